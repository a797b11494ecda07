#include "model/tokenizer_data.h"

#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "model/json_fields.h"

namespace linspec {

using nlohmann::json;
namespace jf = json_fields;

namespace {
// Length of the UTF-8 sequence starting at s[i], or 0 when it is invalid (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0)
    n = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    n = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    n = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}
}  // namespace

int64_t first_invalid_utf8(const std::vector<std::string>& strings) {
  for (size_t k = 0; k < strings.size(); ++k)
    for (size_t i = 0, n = 0; i < strings[k].size(); i += n)
      if ((n = utf8_length(strings[k], i)) == 0) return static_cast<int64_t>(k);
  return -1;
}

void check_utf8(const std::vector<std::string>& strings, const std::string& where, const std::string& key) {
  if (const int64_t bad = first_invalid_utf8(strings); bad >= 0)
    throw_input_error(where, ": key '", key, "': entry ", bad, " is not valid UTF-8");
}

namespace {
// BPE: every merge is "left right" with left, right and left+right in the vocabulary.
void check_bpe_merges(const std::vector<std::string>& vocab, const std::vector<std::string>& merges,
                      const std::string& where) {
  // The rule the BPE tokenizer applies when it is built (data/bpe_tokenizer.cpp), checked where the data is read, so
  // a model file with a meaningless merge is refused by convert naming that file, not later by prepare naming the
  // checkpoint convert wrote.
  const std::unordered_set<std::string_view> tokens(vocab.begin(), vocab.end());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == m.size() ||
        m.find(' ', space + 1) != std::string::npos)
      throw_input_error(where, ": merge ", rank, " '", m, "' is not two tokens separated by one space");
    const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
    if (!tokens.count(left) || !tokens.count(right) || !tokens.count(std::string(left) + std::string(right)))
      throw_input_error(where, ": merge ", rank, " '", m, "' uses or makes a token missing from the vocabulary");
  }
}
}  // namespace

void TokenizerData::validate(const std::string& where) const {
  if (type != "bpe" && type != "spm") throw_input_error(where, ": tokenizer type '", type, "' (expected bpe or spm)");
  if (type == "bpe" && vocab.empty()) throw_input_error(where, ": BPE tokenizer with an empty vocabulary");
  if (type == "spm" && vocab.empty() && spm_model.empty())
    throw_input_error(where, ": SentencePiece tokenizer with neither a vocabulary nor a model file");
  if (!token_types.empty() && token_types.size() != vocab.size())
    throw_input_error(where, ": ", token_types.size(), " token types for ", vocab.size(), " tokens");
  if (!scores.empty() && scores.size() != vocab.size())
    throw_input_error(where, ": ", scores.size(), " scores for ", vocab.size(), " tokens");
  check_utf8(vocab, where, "vocab");
  check_utf8(merges, where, "merges");
  const int64_t n = static_cast<int64_t>(vocab.size());
  auto check_id = [&](const char* what, int64_t id) {
    if (id < -1 || (n > 0 && id >= n)) throw_input_error(where, ": ", what, " id ", id, " outside the vocabulary");
  };
  check_id("bos", bos_id);
  check_id("eos", eos_id);
  check_id("unk", unk_id);
  check_id("pad", pad_id);
  if (type == "bpe") check_bpe_merges(vocab, merges, where);
}

void to_json(json& j, const TokenizerData& t) {
  j = json{{"type", t.type},
           {"vocab", t.vocab},
           {"merges", t.merges},
           {"scores", t.scores},
           {"token_types", t.token_types},
           {"bos_id", t.bos_id},
           {"eos_id", t.eos_id},
           {"unk_id", t.unk_id},
           {"pad_id", t.pad_id},
           {"add_bos", t.add_bos},
           {"add_eos", t.add_eos},
           {"pre", t.pre},
           {"pre_tokenizer_json", t.pre_tokenizer_json}};
  if (!t.chat_template.empty()) j["chat_template"] = t.chat_template;  // absent in older checkpoints
}

namespace {
template <typename T>
std::vector<T> read_array(const json& j, const std::string& key, const std::string& where) {
  std::vector<T> out;
  if (!jf::has(j, key)) return out;
  const json& a = j.at(key);
  if (!a.is_array()) throw_input_error(where, ": key '", key, "': expected an array");
  out.reserve(a.size());
  for (const auto& v : a) out.push_back(jf::convert<T>(v, key, where));
  return out;
}
}  // namespace

TokenizerData tokenizer_data_from_json(const json& j, const std::string& where) {
  TokenizerData t;
  t.type = jf::get<std::string>(j, "type", where);
  t.vocab = read_array<std::string>(j, "vocab", where);
  t.merges = read_array<std::string>(j, "merges", where);
  t.scores = read_array<float>(j, "scores", where);
  t.token_types = read_array<int32_t>(j, "token_types", where);
  t.bos_id = jf::get_or<int64_t>(j, "bos_id", -1, where);
  t.eos_id = jf::get_or<int64_t>(j, "eos_id", -1, where);
  t.unk_id = jf::get_or<int64_t>(j, "unk_id", -1, where);
  t.pad_id = jf::get_or<int64_t>(j, "pad_id", -1, where);
  t.add_bos = jf::get_or<bool>(j, "add_bos", false, where);
  t.add_eos = jf::get_or<bool>(j, "add_eos", false, where);
  t.pre = jf::get_or<std::string>(j, "pre", "", where);
  t.pre_tokenizer_json = jf::get_or<std::string>(j, "pre_tokenizer_json", "", where);
  t.chat_template = jf::get_or<std::string>(j, "chat_template", "", where);
  return t;
}

}  // namespace linspec
