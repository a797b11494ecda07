// The tokenizer of an HF model directory: byte-level BPE from tokenizer.json, or SentencePiece from
// tokenizer.model; special tokens and add-BOS behaviour from tokenizer_config.json and config.json.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/tokenizer_data.h"

namespace linspec {

// InputError naming the directory when no supported tokenizer file is present, or the file at fault.
TokenizerData load_hf_tokenizer(const std::string& dir, const ModelConfig& config);

// Byte-level BPE from a parsed tokenizer.json (exposed for tests). `path` names the file in errors.
TokenizerData bpe_from_tokenizer_json(const nlohmann::json& tj, const std::string& path);

// llama.cpp-style name of a tokenizer.json pre_tokenizer: smollm, gpt2, llama3, qwen2, or "custom".
std::string classify_pre_tokenizer(const nlohmann::json& pre);

// The reverse: the tokenizer.json pre_tokenizer of a name PreTokenizer knows (smollm/starcoder, gpt2/default/"",
// llama3/llama-bpe, qwen2); null for any other name.
nlohmann::json hf_pre_tokenizer_json(const std::string& pre);

}  // namespace linspec
