// The tokenizer files of an HF model directory, the reverse of load_hf_tokenizer (model/formats/hf_tokenizer.h), so
// that `export --hf-dir` writes a directory transformers' AutoTokenizer loads and encodes text with as linspec does:
//   tokenizer.json           byte-level BPE: vocab, merges, added tokens, the pre-tokenizer, ByteLevel decoder, and a
//                            post-processor that adds BOS/EOS exactly when linspec does (tokenizers' own format)
//   tokenizer.model          SentencePiece: the model proto (the source's, or built from a GGUF vocabulary)
//   tokenizer_config.json    tokenizer class, bos/eos/unk/pad, add_bos/add_eos, the chat template, added tokens
//   special_tokens_map.json  the special tokens again (transformers' save_pretrained writes both)
//   generation_config.json   bos/eos/pad ids: HF generate stops at linspec generate's EOS
// In data/ rather than model/formats/ because a GGUF SentencePiece vocabulary needs data/spm_model_proto.h.
#pragma once
#include <map>
#include <string>

#include "model/config.h"
#include "model/tokenizer_data.h"

namespace linspec {

// File name -> contents. InputError naming `where` when the tokenizer cannot be written in HF's format (two tokens
// with the same text, an unrecognised pre-tokenizer without its tokenizer.json source).
std::map<std::string, std::string> hf_tokenizer_files(const TokenizerData& t, const ModelConfig& c,
                                                      const std::string& where);

}  // namespace linspec
