// Everything a tokenizer needs, independent of where it came from (GGUF tokenizer.ggml.*, HF tokenizer.json or a
// SentencePiece tokenizer.model). Produced by model/formats/, stored in checkpoints, consumed by data/.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linspec {

// Token kinds, numbered as GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum TokenType : int32_t {
  kTokenUndefined = 0,
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,      // special tokens (<|im_start|>, <s>): matched verbatim before pre-tokenisation
  kTokenUserDefined = 4,  // added non-special tokens: also matched verbatim
  kTokenUnused = 5,
  kTokenByte = 6,  // SentencePiece byte-fallback pieces <0xNN>
};

struct TokenizerData {
  std::string type;  // "bpe" (byte-level BPE, GPT-2 family) | "spm" (SentencePiece)
  std::vector<std::string> vocab;  // token text by id (byte-level BPE: in the GPT-2 byte->unicode alphabet)
  std::vector<std::string> merges;  // BPE merge rules by rank, each "left right"
  std::vector<float> scores;        // SentencePiece piece scores (empty for BPE)
  std::vector<int32_t> token_types;  // TokenType by id (same length as vocab)
  int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  // -1: none
  bool add_bos = false;
  bool add_eos = false;
  // Pre-tokenizer: a llama.cpp-style name ("smollm", "gpt2", "llama3", "qwen2", "default"; "custom" when a
  // tokenizer.json pre-tokenizer was not recognised) and, for tokenizer.json sources, its raw JSON.
  std::string pre;
  std::string pre_tokenizer_json;
  // The model's chat template (Jinja source, GGUF tokenizer.chat_template / tokenizer_config.json chat_template), ""
  // when the source had none. Not part of the fingerprint: it does not change how text tokenizes.
  std::string chat_template;
  // The serialized SentencePiece ModelProto (tokenizer.model bytes), when the source had one. Binary: NOT part
  // of to_json(); checkpoints store it as its own dataset.
  std::string spm_model;

  // Throws InputError naming `where` on inconsistent data (lengths differ, special ids out of range, ...).
  void validate(const std::string& where) const;
};

// Index of the first string that is not valid UTF-8 (overlong forms and surrogates included, as the JSON stored in
// checkpoints requires), or -1 when all are valid.
int64_t first_invalid_utf8(const std::vector<std::string>& strings);
// InputError "<where>: key '<key>': entry <i> is not valid UTF-8" for the first invalid entry.
void check_utf8(const std::vector<std::string>& strings, const std::string& where, const std::string& key);

// Everything except spm_model (see above).
void to_json(nlohmann::json& j, const TokenizerData& t);
// Throws InputError naming `where` and the key.
TokenizerData tokenizer_data_from_json(const nlohmann::json& j, const std::string& where);
inline void from_json(const nlohmann::json& j, TokenizerData& t) {
  t = tokenizer_data_from_json(j, "tokenizer JSON");
}

}  // namespace linspec
