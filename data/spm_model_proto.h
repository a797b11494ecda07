// Builds a SentencePiece model (serialized ModelProto) from a plain vocabulary with scores and token
// types, the form GGUF files carry for LLaMA-style tokenizers ("tokenizer.ggml.model" = "llama"),
// which ship no tokenizer.model. The result is a BPE model with LLaMA's settings: identity
// normalisation, a dummy-prefix space, whitespace kept, byte fallback when the vocabulary has byte
// tokens.
#pragma once
#include <string>

#include "model/tokenizer_data.h"

namespace linspec {

// Throws InputError naming `where` when scores or token types do not match the vocabulary, or no token
// is the unknown token.
std::string spm_model_from_vocab(const TokenizerData& data, const std::string& where);

}  // namespace linspec
