// Byte-level BPE (GPT-2 family: GPT-2, SmolLM2, StarCoder, LLaMA-3, Qwen2): special tokens are cut
// out of the raw text first, the rest is pre-tokenised by the model's regex set, every piece's bytes
// become byte-alphabet symbols, and merges are applied lowest rank first (leftmost on ties), as in HF
// tokenizers. Thread-safe: encode may be called concurrently.
#pragma once
#include <array>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/pretokenizer.h"
#include "data/special_tokens.h"
#include "data/tokenizer.h"

namespace linspec {

class BpeTokenizer final : public Tokenizer {
 public:
  // InputError naming `where` on inconsistent vocabulary/merges or an unknown pre-tokenizer.
  explicit BpeTokenizer(const TokenizerData& data, const std::string& where = "tokenizer");

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const override;
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const override;
  int32_t vocab_size() const override { return int32_t(vocab_.size()); }
  const std::string& token(int32_t id) const override;

  // BPE of one pre-tokenised piece (raw bytes), appended to `out`.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }
  void merge_symbols(std::vector<int32_t>& symbols) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> vocab_;
  std::vector<std::string> bytes_of_;  // decoded bytes per id
  std::vector<bool> skip_on_decode_;   // control/unknown tokens, dropped by DecodeOptions::skip_special
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> id_of_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_id_{};  // id of each byte's single-character token, -1 if absent
  PreTokenizer pre_;
  bool ignore_merges_;  // LLaMA-3 style: a piece that is itself a token is not split
  SpecialTokenMatcher all_special_, user_defined_;

  static constexpr size_t kCacheMaxPieceBytes = 128;
  static constexpr size_t kCacheMaxEntries = 1 << 17;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace linspec
