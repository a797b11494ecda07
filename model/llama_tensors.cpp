#include "model/llama_tensors.h"

#include "core/error.h"

namespace linspec {

std::map<std::string, Shape> llama_tensor_shapes(const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  std::map<std::string, Shape> s;
  s["embed_tokens.weight"] = {c.vocab_size, h};
  s["norm.weight"] = {h};
  if (!c.tie_word_embeddings) s["lm_head.weight"] = {c.vocab_size, h};
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    s[p + "input_layernorm.weight"] = {h};
    s[p + "post_attention_layernorm.weight"] = {h};
    s[p + "self_attn.q_proj.weight"] = {q, h};
    s[p + "self_attn.k_proj.weight"] = {kv, h};
    s[p + "self_attn.v_proj.weight"] = {kv, h};
    s[p + "self_attn.o_proj.weight"] = {h, q};
    if (c.attention_bias) {
      s[p + "self_attn.q_proj.bias"] = {q};
      s[p + "self_attn.k_proj.bias"] = {kv};
      s[p + "self_attn.v_proj.bias"] = {kv};
    }
    if (c.attention_out_bias) s[p + "self_attn.o_proj.bias"] = {h};
    s[p + "mlp.gate_proj.weight"] = {c.intermediate_size, h};
    s[p + "mlp.up_proj.weight"] = {c.intermediate_size, h};
    s[p + "mlp.down_proj.weight"] = {h, c.intermediate_size};
  }
  return s;
}

std::string linspec_tensor_name(const std::string& name) {
  return name.rfind("model.", 0) == 0 || name.rfind("model/", 0) == 0 ? name.substr(6) : name;
}

std::map<std::string, const Tensor*> tensors_by_linspec_name(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, const Tensor*> out;
  for (const auto& [key, t] : tensors) out[linspec_tensor_name(key)] = &t;
  return out;
}

std::string hf_tensor_name(const std::string& linspec_name) {
  return linspec_name.rfind("lm_head.", 0) == 0 ? linspec_name : "model." + linspec_name;
}

void check_llama_tensor_shape(const std::map<std::string, Shape>& expected, const ModelConfig& c,
                              const std::string& name, const Shape& shape, const std::string& file,
                              const std::string& source_name) {
  auto it = expected.find(name);
  if (it == expected.end())
    throw_input_error(file, ": tensor '", source_name, "' is not part of a ", c.architecture,
                      " model with this config");
  if (shape != it->second)
    throw_input_error(file, ": tensor '", source_name, "' has shape ", shape_str(shape), ", expected ",
                      shape_str(it->second), " from the model config");
}

void check_llama_tensors(const ModelConfig& c, const std::map<std::string, Tensor>& tensors,
                         const std::string& source) {
  const auto expected = llama_tensor_shapes(c);
  for (const auto& [name, shape] : expected) {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw_input_error(source, ": missing tensor '", name, "'");
    if (it->second.shape() != shape)
      throw_input_error(source, ": tensor '", name, "' has shape ", shape_str(it->second.shape()), ", expected ",
                        shape_str(shape), " from the model config");
  }
  for (const auto& [name, t] : tensors)
    if (!expected.count(name))
      throw_input_error(source, ": tensor '", name, "' is not part of a ", c.architecture, " model with this config");
}

}  // namespace linspec
