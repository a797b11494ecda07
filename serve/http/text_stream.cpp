#include "serve/http/text_stream.h"

#include <algorithm>

namespace linspec::serve {

size_t stop_prefix_overlap(const std::string& text, const std::vector<std::string>& stop) {
  size_t best = 0;
  for (const std::string& s : stop)
    for (size_t n = std::min(s.size() - 1, text.size()); n > best; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        best = n;
        break;
      }
  return best;
}

size_t incomplete_utf8_tail(const std::string& text) {
  // Walk back over at most 3 continuation bytes to the lead byte and compare the sequence length it announces.
  const size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    const unsigned char c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop)
    : tok_(tokenizer), stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

std::string TextStream::push(int32_t token) {
  if (stopped_) return "";
  ids_.push_back(token);
  const std::string full = tok_.decode(ids_, {.skip_special = true});
  // Decoding is prefix-stable for the tokenizers linspec has (byte-level BPE, SentencePiece after the first
  // piece); if a tokenizer ever rewrote earlier text, hold everything until finish().
  if (full.compare(0, sent_.size(), sent_) != 0) return "";
  // A stop string may start inside text already sent only if that text ended in a held-back prefix, which never
  // happens, so searching from the longest stop string before the unsent part suffices.
  size_t longest = 0;
  for (const auto& s : stop_) longest = std::max(longest, s.size());
  const size_t from = sent_.size() > longest ? sent_.size() - longest : 0;
  size_t cut = std::string::npos;
  for (const auto& s : stop_) cut = std::min(cut, full.find(s, from));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string delta = cut > sent_.size() ? full.substr(sent_.size(), cut - sent_.size()) : "";
    sent_ += delta;
    return delta;
  }
  size_t safe = full.size() - std::max(stop_prefix_overlap(full, stop_), incomplete_utf8_tail(full));
  if (safe <= sent_.size()) return "";
  std::string delta = full.substr(sent_.size(), safe - sent_.size());
  sent_ += delta;
  return delta;
}

std::string TextStream::finish() {
  if (stopped_) return "";
  const std::string full = tok_.decode(ids_, {.skip_special = true});
  if (full.size() <= sent_.size() || full.compare(0, sent_.size(), sent_) != 0) return "";
  std::string delta = full.substr(sent_.size());
  sent_ += delta;
  return delta;
}

}  // namespace linspec::serve
