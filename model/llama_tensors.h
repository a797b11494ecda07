// The parameter set of a LLaMA-family model, named as in HF transformers without the leading "model."
// ("embed_tokens.weight", "layers.0.self_attn.q_proj.weight", "norm.weight", "lm_head.weight").
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"
#include "model/config.h"

namespace linspec {

// Every tensor the model needs with its shape (lm_head.weight only when embeddings are untied).
std::map<std::string, Shape> llama_tensor_shapes(const ModelConfig& c);

// Tensor names have one spelling inside linspec: HF's without the leading "model." ("layers.0.self_attn.q_proj.weight",
// "lm_head.weight"), as checkpoints store them. Inputs may also spell them as HF does ("model.layers.0…") or as an
// HDF5 path under a "model/" group; these two functions are the only place that knows.
// Any spelling -> linspec name.
std::string linspec_tensor_name(const std::string& name);
// linspec name -> HF name: "model." + name, except lm_head.*.
std::string hf_tensor_name(const std::string& linspec_name);
// The tensors of a map in any spelling, keyed by their linspec names (one pass, for many lookups).
std::map<std::string, const Tensor*> tensors_by_linspec_name(const std::map<std::string, Tensor>& tensors);

// One tensor of a source file, checked against `expected` (llama_tensor_shapes) before it is loaded, so a forged or
// inconsistent header is refused by name before anything is allocated or converted: InputError naming `file` and
// `source_name` (the tensor's name in that file) when the name is not part of the model or the shape differs.
void check_llama_tensor_shape(const std::map<std::string, Shape>& expected, const ModelConfig& c,
                              const std::string& name, const Shape& shape, const std::string& file,
                              const std::string& source_name);

// InputError naming `source` and the tensor when one is missing, has the wrong shape, or is not part of the model.
void check_llama_tensors(const ModelConfig& c, const std::map<std::string, Tensor>& tensors, const std::string& source);

}  // namespace linspec
