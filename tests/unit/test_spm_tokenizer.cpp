// SentencePiece tokenizers: a committed tiny LLaMA-style model against the ids of the PyPI
// sentencepiece package (tests/reference/make_spm_goldens.py); a model trained here with
// libsentencepiece_train; and models rebuilt from vocabulary + scores + types (the GGUF "llama" form).
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "core/error.h"
#include "data/spm_tokenizer.h"
#include "tokenizer_test_util.h"

namespace linspec {
namespace {

using nlohmann::json;

struct Golden {
  json j;
  TokenizerData data;
};

Golden load_tiny() {
  Golden g;
  std::string text;
  EXPECT_TRUE(testing::read_file(testing::source_path("tests/reference/golden/spm_tiny.json"), text));
  g.j = json::parse(text);
  g.data.type = "spm";
  EXPECT_TRUE(testing::read_file(testing::source_path(g.j.at("model").get<std::string>()), g.data.spm_model));
  g.data.bos_id = g.j.at("bos_id").get<int>();
  g.data.eos_id = g.j.at("eos_id").get<int>();
  g.data.unk_id = g.j.at("unk_id").get<int>();
  g.data.add_bos = true;
  return g;
}

// Vocabulary, scores and types of a loaded model: what a GGUF file carries instead of the model.
TokenizerData vocab_form(const sentencepiece::SentencePieceProcessor& sp) {
  TokenizerData d;
  d.type = "spm";
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    d.vocab.push_back(sp.IdToPiece(i));
    d.scores.push_back(sp.GetScore(i));
    d.token_types.push_back(sp.IsUnknown(i) ? kTokenUnknown
                            : sp.IsControl(i) ? kTokenControl
                            : sp.IsByte(i)    ? kTokenByte
                            : sp.IsUnused(i)  ? kTokenUnused
                                              : kTokenNormal);
  }
  d.bos_id = sp.bos_id();
  d.eos_id = sp.eos_id();
  d.unk_id = sp.unk_id();
  d.add_bos = true;
  return d;
}

const EncodeOptions kPlain{.add_special = false, .parse_special = false};

TEST(SpmTokenizer, TinyModelMatchesPythonSentencePiece) {
  const Golden g = load_tiny();
  auto tok = make_tokenizer(g.data);
  EXPECT_EQ(tok->vocab_size(), g.j.at("vocab_size").get<int>());
  for (const auto& s : g.j.at("samples")) {
    const std::string text = s.at("text").get<std::string>();
    const auto ids = tok->encode(text, kPlain);
    EXPECT_EQ(ids, s.at("ids").get<std::vector<int32_t>>()) << "sample: " << text;
    const auto pieces = s.at("pieces").get<std::vector<std::string>>();
    for (size_t i = 0; i < std::min(ids.size(), pieces.size()); ++i) EXPECT_EQ(tok->token(ids[i]), pieces[i]);
    EXPECT_EQ(tok->decode(ids), text);
    // Settings: BOS in front when asked for, never otherwise.
    const auto with_bos = tok->encode(text, {.add_special = true, .parse_special = false});
    ASSERT_EQ(with_bos.size(), ids.size() + 1);
    EXPECT_EQ(with_bos[0], g.data.bos_id);
    EXPECT_EQ(tok->decode(with_bos, {.skip_special = true}), text);
  }
}

TEST(SpmTokenizer, ControlTokenTextBecomesItsId) {
  const Golden g = load_tiny();
  auto tok = make_tokenizer(g.data);
  const auto ids = tok->encode("a<s>b</s>", {.add_special = false, .parse_special = true});
  ASSERT_EQ(std::count(ids.begin(), ids.end(), g.data.bos_id), 1);
  ASSERT_EQ(std::count(ids.begin(), ids.end(), g.data.eos_id), 1);
  EXPECT_EQ(ids.back(), g.data.eos_id);
  EXPECT_EQ(tok->decode(ids), "a<s>b</s>");
  EXPECT_EQ(tok->decode(ids, {.skip_special = true}), "ab");
  const auto plain = tok->encode("a<s>b</s>", kPlain);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), g.data.bos_id), 0);
}

TEST(SpmTokenizer, RebuiltFromVocabularyEncodesTheSame) {
  const Golden g = load_tiny();
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(g.data.spm_model).ok());
  auto rebuilt = make_tokenizer(vocab_form(sp));  // no model bytes: built from vocab/scores/types
  for (const auto& s : g.j.at("samples")) {
    const std::string text = s.at("text").get<std::string>();
    EXPECT_EQ(rebuilt->encode(text, kPlain), s.at("ids").get<std::vector<int32_t>>()) << "sample: " << text;
  }
}

TEST(SpmTokenizer, AddedTokensPastTheModelVocabulary) {
  Golden g = load_tiny();
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(g.data.spm_model).ok());
  TokenizerData d = vocab_form(sp);
  d.spm_model = g.data.spm_model;
  const int32_t added = int32_t(d.vocab.size());
  d.vocab.push_back("<|tool|>");
  d.scores.push_back(0);
  d.token_types.push_back(kTokenUserDefined);
  auto tok = make_tokenizer(d);
  EXPECT_EQ(tok->vocab_size(), added + 1);
  const auto ids = tok->encode("call <|tool|> now", kPlain);  // user-defined: matched even without parse_special
  ASSERT_EQ(std::count(ids.begin(), ids.end(), added), 1);
  EXPECT_EQ(tok->decode(ids), "call <|tool|> now");
}

// Sentences for training: the committed Unicode sample plus generated English-like lines.
class Sentences : public sentencepiece::SentenceIterator {
 public:
  Sentences() {
    std::string sample;
    EXPECT_TRUE(testing::read_file(testing::source_path("tests/reference/tokenizer_unicode_sample.txt"), sample));
    size_t start = 0;
    for (size_t nl; (nl = sample.find('\n', start)) != std::string::npos; start = nl + 1)
      lines_.push_back(sample.substr(start, nl - start));
    const char* words[] = {"linear", "attention", "meets", "decoding", "the", "model", "token", "speculative",
                           "draft", "tree", "verify", "state", "kernel", "train", "a", "of", "and", "12", "2024"};
    uint64_t x = 12345;
    for (int i = 0; i < 3000; ++i) {
      std::string line;
      for (int w = 0; w < 12; ++w) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        line += (w ? " " : "") + std::string(words[(x >> 33) % std::size(words)]);
      }
      lines_.push_back(line);
    }
  }
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::vector<std::string> lines_;
  size_t i_ = 0;
};

std::string train_model() {
  Sentences sentences;
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--model_type=bpe --vocab_size=600 --character_coverage=0.995 --byte_fallback=true "
      "--normalization_rule_name=identity --remove_extra_whitespaces=false --add_dummy_prefix=true "
      "--num_threads=1 --minloglevel=2 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1",
      &sentences, &model);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return model;
}

TEST(SpmTokenizer, ModelTrainedHereWrapsLibSentencePiece) {
  const std::string model = train_model();
  ASSERT_FALSE(model.empty());
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(model).ok());
  TokenizerData d;
  d.type = "spm";
  d.spm_model = model;
  d.bos_id = 1, d.eos_id = 2, d.unk_id = 0;
  d.add_bos = true;
  auto tok = make_tokenizer(d);
  auto rebuilt = make_tokenizer(vocab_form(sp));
  EXPECT_EQ(tok->vocab_size(), 600);
  EXPECT_NE(tok->fingerprint(), rebuilt->fingerprint());
  const std::vector<std::string> texts = {"the model meets speculative decoding",
                                          "  twice  spaced\ttab\nnew line ",
                                          "Unicode: café 你好 😀 ١٢٣ and digits 1,234.5",
                                          "unseen words: zyxwvut qqq"};
  for (const auto& text : texts) {
    std::vector<int> expected;
    ASSERT_TRUE(sp.Encode(text, &expected).ok());
    const auto ids = tok->encode(text);
    ASSERT_EQ(ids.size(), expected.size() + 1) << text;
    EXPECT_EQ(ids[0], 1);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), ids.begin() + 1)) << text;
    EXPECT_EQ(tok->decode(ids, {.skip_special = true}), text);
    EXPECT_EQ(rebuilt->encode(text), ids) << text;
  }
}

TEST(SpmTokenizer, BadModelBytesAreAnInputError) {
  TokenizerData d;
  d.type = "spm";
  d.spm_model = "this is not a protobuf";
  EXPECT_THROW(make_tokenizer(d, "bad.model"), InputError);
  d.spm_model.clear();
  d.vocab = {"<unk>", "a"};  // a vocabulary without scores cannot be rebuilt into a model
  EXPECT_THROW(make_tokenizer(d), InputError);
  d.vocab = {"a", "b"};
  d.scores = {0, 0};
  d.token_types = {kTokenNormal, kTokenNormal};  // no unknown token
  EXPECT_THROW(make_tokenizer(d), InputError);
}

}  // namespace
}  // namespace linspec
