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

// HF checkpoint name -> linspec name: drops the "model." prefix ("lm_head.weight" stays as it is).
std::string strip_hf_prefix(const std::string& hf_name);

// InputError naming `source` and the tensor when one is missing, has the wrong shape, or is not part of the model.
void check_llama_tensors(const ModelConfig& c, const std::map<std::string, Tensor>& tensors, const std::string& source);

}  // namespace linspec
