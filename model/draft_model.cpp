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
  write_tensor_group(file, kGroup, draft.checkpoint_tensors());
  h5::Handle g = h5::open_group(file, kGroup);
  h5::write_checked_string_attr(g.get(), "config", nlohmann::json(draft.config()).dump());
}

bool has_draft_model(const std::string& path) {
  return hdf5_file_has(path, kGroup);
}

LlamaModel load_draft_model(const std::string& path, const LlamaOptions& options) {
  ModelConfig cfg;
  std::map<std::string, Tensor> tensors;
  bool embedded = false;
  with_hdf5_file(path, [&](H5Handle file) {
    if (!h5::has_link(file, kGroup)) return;
    embedded = true;
    h5::Handle g = h5::open_group(file, kGroup);
    if (!h5::has_attr(g.get(), "config")) throw_input_error(path, ": /", kGroup, " has no attribute 'config'");
    const auto j =
        nlohmann::json::parse(h5::read_checked_string_attr(g.get(), "config", h5::Checksum::IfPresent), nullptr, false);
    if (j.is_discarded()) throw_input_error(path, ": /", kGroup, " attribute 'config' is not valid JSON");
    cfg = model_config_from_json(j, path + " (/" + kGroup + " config)");
    tensors = read_tensor_group(file, kGroup, path, true);
  });
  if (embedded) return LlamaModel::from_tensors(cfg, tensors, options, path + " (/" + kGroup + ")");
  Checkpoint ck = load_checkpoint(path);
  return LlamaModel::from_tensors(ck.config, ck.tensors, options, path);
}

}  // namespace linspec
