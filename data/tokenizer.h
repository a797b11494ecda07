// The Tokenizer interface used by prepare/eval/generate, and the factory that builds one from the
// TokenizerData carried in checkpoints and GGUF files.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer_data.h"

namespace linspec {

struct EncodeOptions {
  bool add_special = true;    // add BOS/EOS when the model's settings say so (TokenizerData::add_bos/add_eos)
  bool parse_special = true;  // turn special/added token text such as "<|im_end|>" into its id (HF default)
};

struct DecodeOptions {
  bool skip_special = false;  // drop control tokens (BOS, EOS, ...) from the text
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const = 0;
  virtual std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const = 0;

  virtual int32_t vocab_size() const = 0;
  // Text of one token as stored in the vocabulary (byte-level alphabet for BPE, "▁" pieces for SPM).
  virtual const std::string& token(int32_t id) const = 0;
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t pad() const { return pad_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // Identifies vocabulary + merges + settings; token shards record it to be matched to models.
  uint64_t fingerprint() const { return fingerprint_; }

 protected:
  explicit Tokenizer(const TokenizerData& data);
  void check_id(int32_t id) const;  // InputError when out of range
  // BOS/EOS around encoded text, as the settings and options ask.
  void add_bos_to(std::vector<int32_t>& ids, const EncodeOptions& o) const;
  void add_eos_to(std::vector<int32_t>& ids, const EncodeOptions& o) const;

 private:
  int32_t bos_, eos_, pad_;
  bool add_bos_, add_eos_;
  uint64_t fingerprint_;
};

// Builds the tokenizer that `data.type` names ("bpe" or "spm"). Throws InputError naming `where` (the
// file it came from) on bad data.
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerData& data, const std::string& where = "tokenizer");

// xxh64 over type, vocabulary, merges, scores, token types, special ids, add_bos/add_eos, pre-tokenizer
// (name and JSON) and the SentencePiece model bytes; every field is length-prefixed so different data cannot collide by
// concatenation.
uint64_t tokenizer_fingerprint(const TokenizerData& data);

// True for token types that are matched in raw text and decoded verbatim (control, user-defined).
bool is_special_token_type(int32_t type);

}  // namespace linspec
