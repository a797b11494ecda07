// SentencePiece tokenizers (LLaMA-2 tokenizer.model) through libsentencepiece, loaded from the model
// bytes carried in TokenizerData::spm_model (or built from vocab + scores + types when a GGUF file
// carried no model). Tokens past the SentencePiece vocabulary (added by HF configs) and control
// tokens are cut out of the text first, like byte-level BPE specials.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/special_tokens.h"
#include "data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace linspec {

class SpmTokenizer final : public Tokenizer {
 public:
  // InputError naming `where` when the model does not load or disagrees with the vocabulary.
  explicit SpmTokenizer(const TokenizerData& data, const std::string& where = "tokenizer");
  ~SpmTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const override;
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const override;
  int32_t vocab_size() const override { return int32_t(vocab_.size()); }
  const std::string& token(int32_t id) const override;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  int32_t spm_size_ = 0;              // ids below are the processor's; above are added tokens
  std::vector<std::string> vocab_;
  std::vector<bool> verbatim_;        // decoded as their text, not through SentencePiece
  std::vector<bool> skip_on_decode_;  // control/unknown, dropped by DecodeOptions::skip_special
  SpecialTokenMatcher all_special_, added_only_;
};

}  // namespace linspec
