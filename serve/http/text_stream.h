// Turns a growing list of generated token ids into text deltas for streaming, and ends generation at OpenAI-style
// stop strings. The text is always decode(all tokens, skip_special) — what `linspec generate` prints — so the
// concatenated deltas equal the non-streamed text. A delta holds back (1) an incomplete UTF-8 sequence at the end
// (a multi-byte character split across tokens) and (2) a tail that could still grow into a stop string, so a stop
// string never leaks to the client.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace linspec::serve {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop);

  // Adds one token; returns the text that became final. After a stop string matched, stopped() is true and the
  // text ends before it (the stop string itself is not returned).
  std::string push(int32_t token);
  // Generation ended (EOS, length, cancel): whatever was held back, minus a partial stop string that never completed
  // (that is still text the model generated, so it is returned).
  std::string finish();
  bool stopped() const { return stopped_; }
  // Everything returned so far.
  const std::string& text() const { return sent_; }

 private:
  const Tokenizer& tok_;
  std::vector<std::string> stop_;
  std::vector<int32_t> ids_;
  std::string sent_;
  bool stopped_ = false;
};

// Length of the longest proper prefix of a stop string that `text` ends with (what must be held back).
size_t stop_prefix_overlap(const std::string& text, const std::vector<std::string>& stop);
// Bytes at the end of `text` that form an incomplete UTF-8 sequence (0..3).
size_t incomplete_utf8_tail(const std::string& text);

}  // namespace linspec::serve
