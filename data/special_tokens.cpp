#include "data/special_tokens.h"

#include <algorithm>

namespace linspec {

void SpecialTokenMatcher::add(std::string text, int32_t id) {
  if (text.empty()) return;
  tokens_.push_back({std::move(text), id});
}

void SpecialTokenMatcher::finish() {
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  for (auto& list : by_first_) list.clear();
  for (uint32_t i = 0; i < tokens_.size(); ++i) by_first_[uint8_t(tokens_[i].text[0])].push_back(i);
}

std::vector<SpecialTokenMatcher::Segment> SpecialTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const Entry* hit = nullptr;
    for (uint32_t i : by_first_[uint8_t(text[pos])]) {  // longest first, so the first hit is the longest
      if (text.compare(pos, tokens_[i].text.size(), tokens_[i].text) == 0) {
        hit = &tokens_[i];
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start), -1});
    out.push_back({text.substr(pos, hit->text.size()), hit->id});
    pos += hit->text.size();
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
  return out;
}

}  // namespace linspec
