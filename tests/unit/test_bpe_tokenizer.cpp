// Byte-level BPE on hand-made vocabularies: the byte alphabet, the pre-tokenizer regex sets, merge
// order (rank, then leftmost) against a naive reference, special tokens, BOS/EOS settings, round trips
// on arbitrary bytes, bad data, fingerprints and concurrent use.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_unicode.h"
#include "data/pretokenizer.h"

namespace linspec {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view pre, std::string_view text) {
  PreTokenizer p(pre);
  Pieces out;
  for (auto v : p.split(text)) out.emplace_back(v);
  return out;
}

TEST(ByteAlphabet, Gpt2Table) {
  EXPECT_EQ(byte_to_unicode(' '), "\u0120");   // Ġ
  EXPECT_EQ(byte_to_unicode('\n'), "\u010A");  // Ċ
  EXPECT_EQ(byte_to_unicode('A'), "A");
  EXPECT_EQ(byte_to_unicode(0xAD), "\u0143");  // soft hyphen, the last moved byte
  EXPECT_EQ(byte_to_unicode(0xE9), "\u00E9");  // printable Latin-1 stays
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    seen.insert(byte_to_unicode(uint8_t(b)));
    EXPECT_EQ(byte_level_to_bytes(byte_to_unicode(uint8_t(b))), std::string(1, char(b)));
  }
  EXPECT_EQ(seen.size(), 256u);
}

TEST(PreTokenizer, Gpt2Pattern) {
  EXPECT_EQ(split("gpt2", "Hello world's  test 123!!"),
            (Pieces{"Hello", " world", "'s", " ", " test", " 123", "!!"}));
  EXPECT_EQ(split("gpt2", "a   b  "), (Pieces{"a", "  ", " b", "  "}));
  EXPECT_EQ(split("gpt2", "x\n\n  y"), (Pieces{"x", "\n\n ", " y"}));
  EXPECT_EQ(split("gpt2", "I'M"), (Pieces{"I", "'", "M"}));  // contractions are lower-case only here
}

TEST(PreTokenizer, SmolLMSplitsEveryDigit) {
  EXPECT_EQ(split("smollm", "a 12b"), (Pieces{"a", " ", "1", "2", "b"}));
  EXPECT_EQ(split("smollm", "v3.14"), (Pieces{"v", "3", ".", "1", "4"}));
  EXPECT_EQ(split("smollm", "\u00BD\u2167\u0663"), (Pieces{"\u00BD", "\u2167", "\u0663"}));  // No, Nl, Nd
}

TEST(PreTokenizer, Llama3AndQwen2Numbers) {
  EXPECT_EQ(split("llama3", "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split("llama3", "HE'LL go"), (Pieces{"HE", "'LL", " go"}));
  EXPECT_EQ(split("llama3", "x\r\n\r\ny"), (Pieces{"x", "\r\n\r\n", "y"}));
  EXPECT_EQ(split("qwen2", "1234"), (Pieces{"1", "2", "3", "4"}));
}

TEST(PreTokenizer, UnicodeWhiteSpaceAsHuggingFace) {
  // U+3000 is white space; U+180E is not (Unicode >= 6.3), although PCRE2's \s still says so.
  EXPECT_EQ(split("gpt2", "a\u3000\u3000b"), (Pieces{"a", "\u3000", "\u3000", "b"}));
  EXPECT_EQ(split("gpt2", "a\u180E\u180Eb"), (Pieces{"a", "\u180E\u180E", "b"}));
  EXPECT_EQ(split("gpt2", "caf\u00E9 \u4F60\u597D"), (Pieces{"caf\u00E9", " \u4F60\u597D"}));
}

TEST(PreTokenizer, InvalidUtf8IsKeptAndCovered) {
  const std::string text = "ab\xFF\xC3 cd\xE2\x82";
  std::string joined;
  for (const auto& p : split("smollm", text)) joined += p;
  EXPECT_EQ(joined, text);
  EXPECT_THROW(PreTokenizer("no-such-set"), InputError);
}

// A tiny byte-level vocabulary: a control token, all 256 bytes, then the tokens that merges make.
TokenizerData tiny(std::vector<std::pair<std::string, std::string>> merges, std::string pre = "gpt2") {
  TokenizerData d;
  d.type = "bpe";
  d.pre = std::move(pre);
  d.vocab.push_back("<|end|>");
  d.token_types.push_back(kTokenControl);
  for (int b = 0; b < 256; ++b) {
    d.vocab.push_back(byte_to_unicode(uint8_t(b)));
    d.token_types.push_back(kTokenNormal);
  }
  std::set<std::string> have(d.vocab.begin(), d.vocab.end());
  for (auto& [l, r] : merges) {
    d.merges.push_back(l + " " + r);
    if (have.insert(l + r).second) {
      d.vocab.push_back(l + r);
      d.token_types.push_back(kTokenNormal);
    }
  }
  d.bos_id = d.eos_id = 0;
  return d;
}

std::vector<std::string> tokens_of(const Tokenizer& t, std::string_view text, EncodeOptions o = {}) {
  std::vector<std::string> out;
  for (int32_t id : t.encode(text, o)) out.push_back(t.token(id));
  return out;
}

TEST(BpeTokenizer, MergesLowestRankFirst) {
  BpeTokenizer t(tiny({{"l", "o"}, {"lo", "w"}, {"e", "r"}, {"\u0120", "low"}, {"low", "er"}, {"a", "a"},
                       {"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(tokens_of(t, "lower"), (std::vector<std::string>{"lower"}));
  // "er" (rank 2) is made before "Ġlow" (rank 3), which then blocks "lower".
  EXPECT_EQ(tokens_of(t, " lower"), (std::vector<std::string>{"\u0120low", "er"}));
  EXPECT_EQ(tokens_of(t, "aaaaa"), (std::vector<std::string>{"aa", "aa", "a"}));  // leftmost first
  EXPECT_EQ(tokens_of(t, "abc"), (std::vector<std::string>{"a", "bc"}));          // rank beats position
  EXPECT_EQ(tokens_of(t, "x"), (std::vector<std::string>{"x"}));
  EXPECT_TRUE(t.encode("").empty());
}

// Classic BPE, one merge at a time: the lowest-rank adjacent pair, leftmost among equals.
std::vector<std::string> naive_bpe(const std::string& word, const std::map<std::pair<std::string, std::string>, int>& rank) {
  std::vector<std::string> s;
  for (char c : word) s.emplace_back(1, c);
  for (;;) {
    int best = INT32_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < s.size(); ++i)
      if (auto it = rank.find({s[i], s[i + 1]}); it != rank.end() && it->second < best) best = it->second, at = i;
    if (best == INT32_MAX) return s;
    s[at] += s[at + 1];
    s.erase(s.begin() + at + 1);
  }
}

TEST(BpeTokenizer, AgreesWithNaiveBpeOnRandomVocabularies) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::string> toks = {"a", "b", "c", "d"};
    std::vector<std::pair<std::string, std::string>> merges;
    std::map<std::pair<std::string, std::string>, int> rank;
    while (merges.size() < 60) {
      const auto& l = toks[rng() % toks.size()];
      const auto& r = toks[rng() % toks.size()];
      if (l.size() + r.size() > 8 || rank.count({l, r})) continue;
      rank[{l, r}] = int(merges.size());
      merges.push_back({l, r});
      if (std::find(toks.begin(), toks.end(), l + r) == toks.end()) toks.push_back(l + r);
    }
    BpeTokenizer t(tiny(merges));
    for (int w = 0; w < 200; ++w) {
      std::string word;
      for (size_t n = 1 + rng() % 40; n-- > 0;) word += char('a' + rng() % 4);
      ASSERT_EQ(tokens_of(t, word), naive_bpe(word, rank)) << "trial " << trial << ", word " << word;
    }
  }
}

TEST(BpeTokenizer, SpecialTokensAndSettings) {
  TokenizerData d = tiny({{"h", "i"}});
  BpeTokenizer plain(d);
  const auto ids = plain.encode("hi<|end|>hi");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], 0);
  EXPECT_EQ(plain.decode(ids), "hi<|end|>hi");
  EXPECT_EQ(plain.decode(ids, {.skip_special = true}), "hihi");
  EXPECT_EQ(plain.encode("hi<|end|>", {.add_special = true, .parse_special = false}).size(), 8u);  // spelled out

  d.add_bos = d.add_eos = true;
  BpeTokenizer framed(d);
  EXPECT_EQ(framed.encode("hi"), (std::vector<int32_t>{0, ids[0], 0}));
  EXPECT_EQ(framed.encode("hi", {.add_special = false}), (std::vector<int32_t>{ids[0]}));
  EXPECT_NE(framed.fingerprint(), plain.fingerprint());
}

TEST(BpeTokenizer, ArbitraryBytesRoundTrip) {
  BpeTokenizer t(tiny({{"\u0120", "t"}, {"h", "e"}, {"\u0120t", "he"}}, "smollm"));
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    std::string text;
    for (size_t n = rng() % 64; n-- > 0;) text += char(rng() % 4 ? " theabc\n9\xC3\xA9"[rng() % 11] : rng() % 256);
    EXPECT_EQ(t.decode(t.encode(text)), text);
  }
}

TEST(BpeTokenizer, BadDataIsAnInputError) {
  TokenizerData d = tiny({{"a", "b"}});
  d.merges.push_back("ab");  // not two tokens
  EXPECT_THROW(BpeTokenizer{d}, InputError);
  d = tiny({{"a", "b"}});
  d.merges.push_back("ab zz");  // zz is no token
  EXPECT_THROW(BpeTokenizer{d}, InputError);
  d = tiny({});
  d.pre = "custom";
  EXPECT_THROW(make_tokenizer(d, "x.gguf"), InputError);
  d = tiny({});
  d.bos_id = 100000;
  EXPECT_THROW(make_tokenizer(d), InputError);
  EXPECT_THROW(BpeTokenizer(tiny({})).decode(std::vector<int32_t>{-1}), InputError);
}

TEST(BpeTokenizer, FingerprintFollowsData) {
  const TokenizerData a = tiny({{"a", "b"}, {"c", "d"}});
  TokenizerData b = a;
  EXPECT_EQ(tokenizer_fingerprint(a), tokenizer_fingerprint(b));
  std::swap(b.merges[0], b.merges[1]);
  EXPECT_NE(tokenizer_fingerprint(a), tokenizer_fingerprint(b));
  b = a;
  b.pre = "smollm";
  EXPECT_NE(tokenizer_fingerprint(a), tokenizer_fingerprint(b));
  b = a;  // the same bytes split differently between neighbouring strings
  b.vocab[1] += b.vocab[2];
  b.vocab[2].clear();
  EXPECT_NE(tokenizer_fingerprint(a), tokenizer_fingerprint(b));
}

TEST(BpeTokenizer, ConcurrentEncodeIsConsistent) {
  BpeTokenizer t(tiny({{"l", "o"}, {"lo", "w"}, {"e", "r"}, {"low", "er"}}));
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "lower lowest flower " + std::to_string(i) + "\n";
  const auto expected = t.encode(text);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] { ok[k] = t.encode(text) == expected; });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

}  // namespace
}  // namespace linspec
