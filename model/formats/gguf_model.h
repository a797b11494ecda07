// A LLaMA-family model from a GGUF file: hyper-parameters from <arch>.* metadata, tokenizer from
// tokenizer.ggml.*, tensors dequantised to f32, renamed to HF names and un-permuted.
#pragma once
#include <string>

#include "model/checkpoint.h"
#include "model/formats/gguf.h"

namespace linspec {

ModelConfig gguf_model_config(const GgufFile& f);
TokenizerData gguf_tokenizer(const GgufFile& f);

// llama.cpp tensor name ("blk.3.attn_q.weight") -> linspec name ("layers.3.self_attn.q_proj.weight"); "" if the
// name is not a LLaMA-family tensor.
std::string gguf_to_linspec_name(const std::string& gguf_name);

// llama.cpp's converter interleaves the two RoPE halves of every head of Q and K; this undoes it: within each
// head of `head_dim` rows, GGUF row 2i+j holds HF row j*head_dim/2 + i. Works on weights [rows, in] and biases.
Tensor unpermute_rope_rows(const Tensor& w, int64_t head_dim);

// The whole model, tensors stored in `dtype` (F32 or BF16).
Checkpoint load_gguf_model(const std::string& path, DType dtype = DType::F32);

}  // namespace linspec
