// LlamaModel and linear attention: mixers per layer from an AttentionSpec (fresh, or restored from a checkpoint's
// tensors), the spec kept in the model config, and the tensor map a checkpoint stores.
#include "attention/linear_mixers.h"
#include "model/llama.h"
#include "model/llama_tensors.h"

namespace linspec {
namespace {

std::string layer_prefix(int64_t i) { return "layers." + std::to_string(i) + ".self_attn."; }

// Copies a mixer's persistent tensors from `tensors`, looked up as `prefix + name` (e.g. prefix
// "layers.3.self_attn.") in `tensors` (keyed by linspec name: tensors_by_linspec_name). InputError naming `where`
// and the tensor when one is missing or has another shape.
void load_mixer_tensors(const AttentionMixer& mixer, const std::map<std::string, const Tensor*>& tensors,
                        const std::string& prefix, const std::string& where) {
  for (const auto& [name, target] : mixer.persistent_tensors()) {
    const std::string full = prefix + name;
    const auto it = tensors.find(full);
    const Tensor* src = it == tensors.end() ? nullptr : it->second;
    if (!src)
      throw_input_error(where, ": tensor ", full, " is missing (the '", mixer.kind(),
                        "' attention of the config needs it)");
    if (src->shape() != target.shape())
      throw_input_error(where, ": tensor ", full, " has shape ", shape_str(src->shape()), ", the '", mixer.kind(),
                        "' attention needs ", shape_str(target.shape()));
    Tensor dst = target;  // shares storage with the mixer's tensor
    dst.copy_from(*src);
  }
}

}  // namespace

void LlamaModel::build_attention_from_config(const std::map<std::string, Tensor>* source, const std::string& where) {
  if (config_.attention.is_null()) return;
  const AttentionSpec spec = attention_spec_from_json(config_.attention, config_.num_layers, where);
  config_.attention = attention_spec_to_json(spec);
  const AttentionShape shape{config_.num_heads, config_.num_kv_heads, config_.head_dim};
  const MixerInit init{options_.dtype, options_.requires_grad, options_.device};
  const std::map<std::string, const Tensor*> by_name =
      source ? tensors_by_linspec_name(*source) : std::map<std::string, const Tensor*>{};
  for (int64_t i = 0; i < num_layers(); ++i) {
    if (spec.keeps_softmax(i)) {
      set_attention(i, std::make_unique<SoftmaxAttention>(shape));
      continue;
    }
    auto mixer = make_mixer(spec.preset, spec.options, shape, i, init);
    if (source) load_mixer_tensors(*mixer, by_name, layer_prefix(i), where);
    set_attention(i, std::move(mixer));
  }
}

void LlamaModel::set_attention_spec(const AttentionSpec& spec_in) {
  const AttentionSpec spec = resolve_attention_spec(spec_in, config_.num_layers, "attention");
  config_.attention = attention_spec_to_json(spec);
  if (spec.is_softmax()) {
    const AttentionShape shape{config_.num_heads, config_.num_kv_heads, config_.head_dim};
    for (int64_t i = 0; i < num_layers(); ++i) set_attention(i, std::make_unique<SoftmaxAttention>(shape));
    return;
  }
  build_attention_from_config(nullptr, "attention");
}

AttentionSpec LlamaModel::attention_spec() const {
  return attention_spec_from_json(config_.attention, config_.num_layers, "model config");
}

std::map<std::string, Tensor> LlamaModel::checkpoint_tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : params_.entries()) out[linspec_tensor_name(name)] = t.detach();
  for (int64_t i = 0; i < num_layers(); ++i)
    for (const auto& [name, t] : layers_[i].mixer->persistent_tensors()) out[layer_prefix(i) + name] = t.detach();
  return out;
}

}  // namespace linspec
