#include "trainer/trainable.h"

#include <algorithm>

#include "core/error.h"

namespace linspec::trainer {
namespace {

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

bool trains_lora(const std::vector<std::string>& categories) { return has(categories, "lora"); }
bool trains_heads(const std::vector<std::string>& categories) { return has(categories, "heads"); }
bool trains_draft_model(const std::vector<std::string>& categories) { return has(categories, "draft"); }
bool trains_feature_draft(const std::vector<std::string>& categories) { return has(categories, "eagle"); }

std::set<std::string> select_trainable(const LlamaModel& model, const std::vector<std::string>& categories) {
  const bool all = has(categories, "all");
  std::set<std::string> out;
  for (const auto& [name, t] : model.named_parameters()) {
    const bool own = model.parameters().contains(name);  // false: a mixer's parameter
    bool pick = all;
    pick = pick || (has(categories, "norms") && name.ends_with("norm.weight"));
    pick = pick || (has(categories, "embeddings") && name == "model.embed_tokens.weight");
    pick = pick || (has(categories, "lm_head") && name == "lm_head.weight");
    pick = pick || (has(categories, "attention_new") && !own);
    if (pick) out.insert(name);
  }
  return out;
}

bool takes_weight_decay(const std::string& name, const Tensor& t) {
  if (t.dim() <= 1) return false;
  if (name.ends_with("norm.weight") || name.ends_with(".bias")) return false;
  const std::string leaf = name.substr(name.rfind('.') + 1);
  return leaf.find("lambda") == std::string::npos && leaf.find("conv") == std::string::npos;
}

std::vector<ParamGroup> make_param_groups(const std::vector<std::pair<std::string, Tensor>>& trainable,
                                          double weight_decay) {
  ParamGroup decay, no_decay;
  decay.weight_decay = weight_decay;
  no_decay.weight_decay = 0.0;
  for (const auto& [name, t] : trainable) {
    ParamGroup& g = takes_weight_decay(name, t) ? decay : no_decay;
    g.params.push_back(t);
    g.names.push_back(name);
  }
  return {decay, no_decay};
}

}  // namespace linspec::trainer
