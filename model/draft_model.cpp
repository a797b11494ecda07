#include "model/draft_model.h"

#include "attention/spec.h"
#include "model/hdf5_util.h"

namespace linspec {
namespace {
const char* kGroup = "draft/model";
}  // namespace

ModelConfig draft_model_config(const ModelConfig& target, int64_t layers) {
  if (layers < 1 || layers > target.num_layers)
    throw_input_error("draft model: layers must be in [1, ", target.num_layers, "] (the target's layers), got ", layers);
  ModelConfig c = target;
  c.num_layers = layers;
  if (!target.attention.is_null()) {
    AttentionSpec spec = attention_spec_from_json(target.attention, target.num_layers, "target model config");
    std::vector<int64_t> kept;
    for (int64_t l : spec.keep_softmax_layers)
      if (l < layers) kept.push_back(l);
    spec.keep_softmax_layers = kept;
    c.attention = attention_spec_to_json(spec);
  }
  return c;
}

LlamaModel make_draft_model(const LlamaModel& target, int64_t layers, const LlamaOptions& options,
                            bool share_weights) {
  const ModelConfig cfg = draft_model_config(target.config(), layers);
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : target.checkpoint_tensors()) {
    if (name.rfind("layers.", 0) == 0 && std::stoll(name.substr(7)) >= layers) continue;  // beyond the cut
    tensors[name] = share_weights ? t : t.clone();
  }
  return LlamaModel::from_tensors(cfg, tensors, options, "draft model (first " + std::to_string(layers) + " layers)");
}

void write_draft_model(H5Handle file, const LlamaModel& draft) {
  write_configured_group(file, kGroup, draft.checkpoint_tensors(), nlohmann::json(draft.config()));
}

bool has_draft_model(const std::string& path) {
  return hdf5_file_has(path, kGroup);
}

LlamaModel load_draft_model(const std::string& path, const LlamaOptions& options) {
  if (const auto g = read_configured_group(path, kGroup))
    return LlamaModel::from_tensors(model_config_from_json(g->config, path + " (/" + kGroup + " config)"), g->tensors,
                                    options, path + " (/" + kGroup + ")");
  Checkpoint ck = load_checkpoint(path);
  return LlamaModel::from_tensors(ck.config, ck.tensors, options, path);
}

}  // namespace linspec
