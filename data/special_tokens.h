// Finds special/added tokens (e.g. "<|im_start|>") in raw text before any pre-tokenisation, as HF
// tokenizers does: the leftmost occurrence wins, and among tokens starting there the longest.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace linspec {

class SpecialTokenMatcher {
 public:
  void add(std::string text, int32_t id);  // empty texts are ignored
  void finish();                           // call once after the last add(), before split()
  bool empty() const { return tokens_.empty(); }

  // A stretch of input: either plain text (id < 0) or one special token.
  struct Segment {
    std::string_view text;
    int32_t id = -1;
  };
  std::vector<Segment> split(std::string_view text) const;

 private:
  struct Entry {
    std::string text;
    int32_t id;
  };
  std::vector<Entry> tokens_;                          // longest first
  std::array<std::vector<uint32_t>, 256> by_first_{};  // indices into tokens_, by first byte
};

}  // namespace linspec
