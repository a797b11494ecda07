#include "data/bpe_tokenizer.h"

#include <queue>

#include "core/error.h"
#include "data/byte_unicode.h"

namespace linspec {
namespace {

bool ignores_merges(std::string_view pre) { return pre == "llama3" || pre == "llama-bpe"; }

int32_t type_of(const TokenizerData& d, size_t id) { return d.token_types.empty() ? kTokenNormal : d.token_types[id]; }

const std::string& known_pre(const TokenizerData& d, const std::string& where) {
  if (!PreTokenizer::is_known(d.pre))
    throw_input_error(where, ": pre-tokenizer '", d.pre, "' is not supported (known: smollm, starcoder, gpt2, default, ",
                      "llama3, llama-bpe, qwen2)");
  return d.pre;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const TokenizerData& d, const std::string& where)
    : Tokenizer(d), vocab_(d.vocab), pre_(known_pre(d, where)), ignore_merges_(ignores_merges(d.pre)) {
  d.validate(where);
  const size_t n = vocab_.size();
  if (n > size_t(INT32_MAX)) throw_input_error(where, ": vocabulary of ", n, " tokens is too large");

  id_of_.reserve(n);
  bytes_of_.resize(n);
  skip_on_decode_.resize(n);
  for (size_t id = 0; id < n; ++id) {
    id_of_.emplace(vocab_[id], int32_t(id));  // first id wins on duplicates
    const int32_t type = type_of(d, id);
    const bool listed_special =
        d.token_types.empty() && (int64_t(id) == d.bos_id || int64_t(id) == d.eos_id || int64_t(id) == d.pad_id);
    const bool special = is_special_token_type(type) || type == kTokenUnknown || listed_special;
    // Added tokens are plain text, not byte-alphabet strings.
    bytes_of_[id] = special ? vocab_[id] : byte_level_to_bytes(vocab_[id]);
    skip_on_decode_[id] = type == kTokenControl || type == kTokenUnknown || listed_special;
    if (special) all_special_.add(vocab_[id], int32_t(id));
    if (type == kTokenUserDefined) user_defined_.add(vocab_[id], int32_t(id));
  }
  all_special_.finish();
  user_defined_.finish();
  for (int b = 0; b < 256; ++b) {
    auto it = id_of_.find(byte_to_unicode(uint8_t(b)));
    byte_id_[b] = it == id_of_.end() ? -1 : it->second;
  }

  merges_.reserve(d.merges.size());
  for (size_t rank = 0; rank < d.merges.size(); ++rank) {
    const std::string& m = d.merges[rank];
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == m.size() || m.find(' ', space + 1) != std::string::npos)
      throw_input_error(where, ": merge ", rank, " '", m, "' is not two tokens separated by one space");
    const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
    auto l = id_of_.find(left), r = id_of_.find(right), out = id_of_.find(std::string(left) + std::string(right));
    if (l == id_of_.end() || r == id_of_.end() || out == id_of_.end())
      throw_input_error(where, ": merge ", rank, " '", m, "' uses or makes a token missing from the vocabulary");
    merges_.emplace(pair_key(l->second, r->second), Merge{int32_t(rank), out->second});  // first rank wins
  }
}

const std::string& BpeTokenizer::token(int32_t id) const {
  check_id(id);
  return vocab_[id];
}

// Merges adjacent symbols, lowest rank first and leftmost among equal ranks, until no pair has a
// merge. Symbols form a linked list over their original positions; stale queue entries are
// recognised by comparing the ids they were made from.
void BpeTokenizer::merge_symbols(std::vector<int32_t>& symbols) const {
  const int32_t n = int32_t(symbols.size());
  if (n < 2) return;
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::vector<Candidate> storage;
  storage.reserve(2 * n);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue(std::greater<>{}, std::move(storage));
  auto consider = [&](int32_t left, int32_t right) {
    auto it = merges_.find(pair_key(symbols[left], symbols[right]));
    if (it != merges_.end())
      queue.push({it->second.rank, left, right, symbols[left], symbols[right], it->second.result});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    if (symbols[c.left] != c.left_id || next[c.left] != c.right || symbols[c.right] != c.right_id) continue;
    symbols[c.left] = c.result;
    symbols[c.right] = -1;  // gone
    next[c.left] = next[c.right];
    if (next[c.left] >= 0) prev[next[c.left]] = c.left;
    if (prev[c.left] >= 0) consider(prev[c.left], c.left);
    if (next[c.left] >= 0) consider(c.left, next[c.left]);
  }
  size_t kept = 0;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) symbols[kept++] = symbols[i];
  symbols.resize(kept);
}

void BpeTokenizer::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1) {
    if (int32_t id = byte_id_[uint8_t(bytes[0])]; id >= 0) out.push_back(id);
    return;
  }
  const bool cacheable = bytes.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(bytes); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> symbols;
  if (ignore_merges_) {
    std::string as_token;
    for (char b : bytes) as_token += byte_to_unicode(uint8_t(b));
    if (auto it = id_of_.find(as_token); it != id_of_.end()) symbols.push_back(it->second);
  }
  if (symbols.empty()) {
    symbols.reserve(bytes.size());
    for (char b : bytes)  // a byte without a token is dropped, as HF BPE does without an unk token
      if (int32_t id = byte_id_[uint8_t(b)]; id >= 0) symbols.push_back(id);
    merge_symbols(symbols);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::string(bytes), std::move(symbols));
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  add_bos_to(ids, options);
  const SpecialTokenMatcher& matcher = options.parse_special ? all_special_ : user_defined_;
  auto encode_plain = [&](std::string_view plain) {
    for (std::string_view piece : pre_.split(plain)) encode_piece(piece, ids);
  };
  if (matcher.empty()) {
    encode_plain(text);
  } else {
    for (const auto& segment : matcher.split(text)) {
      if (segment.id >= 0)
        ids.push_back(segment.id);
      else
        encode_plain(segment.text);
    }
  }
  add_eos_to(ids, options);
  return ids;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  std::string text;
  for (int32_t id : ids) {
    check_id(id);
    if (options.skip_special && skip_on_decode_[id]) continue;
    text += bytes_of_[id];
  }
  return text;
}

}  // namespace linspec
