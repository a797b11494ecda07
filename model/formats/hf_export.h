// A native checkpoint as an HF model directory, the reverse of load_hf_model (model/formats/safetensors.h):
// config.json (LlamaForCausalLM; Qwen2ForCausalLM for a qwen2 model, whose o_proj has no bias) and
// model.safetensors with HF tensor names ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight" only when
// the embeddings are untied), plus any other files the caller passes (the tokenizer files of
// data/hf_tokenizer_files.h: model/ cannot build a SentencePiece model, data/ can).
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"

namespace linspec {

// The config.json document for `c` with torch_dtype naming `dtype` (f32 or bf16).
nlohmann::json hf_config_json(const ModelConfig& c, DType dtype);

// InputError naming `where` unless every layer is softmax attention and the tensors are exactly the model's (an HF
// LLaMA cannot hold linear-attention mixers), or the config has no HF equivalent.
void check_hf_exportable(const Checkpoint& ck, const std::string& where);

// Writes config.json, model.safetensors (tensors in `dtype`: f32 or bf16) and `extra_files` (name -> contents)
// into a temporary sibling directory, then renames it to `dir`, so `dir` is either complete or untouched. An
// existing `dir` is an InputError unless `overwrite`. Runs check_hf_exportable first.
void write_hf_directory(const Checkpoint& ck, const std::string& dir, DType dtype, const std::string& where,
                        bool overwrite = false, const std::map<std::string, std::string>& extra_files = {});

}  // namespace linspec
