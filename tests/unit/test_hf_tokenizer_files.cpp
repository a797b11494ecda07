// The tokenizer files `export --hf-dir` writes (data/hf_tokenizer_files.h) read back through linspec's HF tokenizer
// reader (load_hf_tokenizer, which reads real HF directories) unchanged: vocabulary, merges, added tokens and their
// kinds, BOS/EOS/PAD, add_bos (a TemplateProcessing post-processor), the pre-tokenizer and the chat template; every
// pre-tokenizer name linspec knows maps to tokenizer.json and back; SentencePiece writes the model proto; texts
// tokenizer.json cannot hold are refused naming the checkpoint. (transformers itself reads them in
// tests/integration/test_export_transformers.sh.)
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "data/hf_tokenizer_files.h"
#include "model/formats/hf_tokenizer.h"
#include "tests/unit/format_test_util.h"

namespace linspec {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A byte-level BPE: letters, two merges, one control and one user-defined added token.
TokenizerData small_bpe() {
  TokenizerData t;
  t.type = "bpe";
  t.pre = "smollm";
  for (const char* s : {"a", "b", "c", "Ġ", "ab", "abc", "<|endoftext|>", "<|im_start|>", "<tool>"}) t.vocab.push_back(s);
  t.merges = {"a b", "ab c"};
  t.token_types = {1, 1, 1, 1, 1, 1, kTokenControl, kTokenControl, kTokenUserDefined};
  t.bos_id = 7;
  t.eos_id = 6;
  t.pad_id = 6;
  t.add_bos = true;
  t.chat_template = "{% for m in messages %}<|im_start|>{{ m['content'] }}{% endfor %}";
  return t;
}

ModelConfig config_for(const TokenizerData& t) {
  ModelConfig c;
  c.vocab_size = static_cast<int64_t>(t.vocab.size()) + 3;
  c.max_position_embeddings = 1024;
  return c;
}

fs::path write_dir(const std::map<std::string, std::string>& files, const std::string& name) {
  const fs::path dir = testing::temp_path(name);
  fs::create_directories(dir);
  for (const auto& [file, contents] : files) testing::write_file((dir / file).string(), contents);
  return dir;
}

TEST(HfTokenizerFiles, BpeReadsBackThroughTheHfReader) {
  const TokenizerData t = small_bpe();
  const auto files = hf_tokenizer_files(t, config_for(t), "ck.h5");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
    EXPECT_TRUE(files.count(f)) << f;
  const TokenizerData back = load_hf_tokenizer(write_dir(files, "bpe").string(), config_for(t));
  EXPECT_EQ(back.type, "bpe");
  EXPECT_EQ(back.vocab, t.vocab);
  EXPECT_EQ(back.merges, t.merges);
  EXPECT_EQ(back.token_types, t.token_types);
  EXPECT_EQ(back.pre, "smollm");
  EXPECT_EQ(back.bos_id, 7);
  EXPECT_EQ(back.eos_id, 6);
  EXPECT_EQ(back.pad_id, 6);
  EXPECT_TRUE(back.add_bos);
  EXPECT_FALSE(back.add_eos);
  EXPECT_EQ(back.chat_template, t.chat_template);

  const json tj = json::parse(files.at("tokenizer.json"));
  const json& post = tj.at("post_processor");  // HF adds BOS from the post-processor alone
  EXPECT_EQ(post.at("type"), "TemplateProcessing");
  EXPECT_EQ(post.at("single").size(), 2u);
  EXPECT_EQ(post.at("single")[0].at("SpecialToken").at("id"), "<|im_start|>");
  EXPECT_EQ(post.at("special_tokens").at("<|im_start|>").at("ids"), json::array({7}));
  const json cfg = json::parse(files.at("tokenizer_config.json"));
  EXPECT_EQ(cfg.at("tokenizer_class"), "PreTrainedTokenizerFast");
  EXPECT_EQ(cfg.at("clean_up_tokenization_spaces"), false);
  EXPECT_EQ(cfg.at("model_max_length"), 1024);
  EXPECT_EQ(cfg.at("added_tokens_decoder").at("8").at("special"), false);  // user-defined: matched, not special
  EXPECT_EQ(cfg.at("additional_special_tokens"), json::array());  // both control tokens are bos/eos
  const json gen = json::parse(files.at("generation_config.json"));
  EXPECT_EQ(gen.at("eos_token_id"), 6);
  EXPECT_EQ(gen.at("bos_token_id"), 7);
  EXPECT_EQ(gen.at("pad_token_id"), 6);
}

TEST(HfTokenizerFiles, NoBosMeansByteLevelPostProcessorAndSourcePreTokenizerIsKept) {
  TokenizerData t = small_bpe();
  t.add_bos = false;
  t.chat_template.clear();
  t.pre = "custom";  // unknown to linspec's names: the source's own JSON is written back verbatim
  t.pre_tokenizer_json = R"({"type":"Whitespace"})";
  const auto files = hf_tokenizer_files(t, config_for(t), "ck.h5");
  const json tj = json::parse(files.at("tokenizer.json"));
  EXPECT_EQ(tj.at("post_processor").at("type"), "ByteLevel");
  EXPECT_EQ(tj.at("pre_tokenizer"), json::parse(t.pre_tokenizer_json));
  EXPECT_FALSE(json::parse(files.at("tokenizer_config.json")).contains("chat_template"));
}

TEST(HfTokenizerFiles, EveryKnownPreTokenizerNameMapsBack) {
  const std::map<std::string, std::string> canonical = {
      {"gpt2", "gpt2"},       {"default", "gpt2"},       {"", "gpt2"},     {"smollm", "smollm"},
      {"starcoder", "smollm"}, {"llama3", "llama3"}, {"llama-bpe", "llama3"}, {"qwen2", "qwen2"}};
  for (const auto& [name, back] : canonical) EXPECT_EQ(classify_pre_tokenizer(hf_pre_tokenizer_json(name)), back) << name;
  EXPECT_TRUE(hf_pre_tokenizer_json("custom").is_null());
}

TEST(HfTokenizerFiles, RefusesWhatTokenizerJsonCannotHold) {
  TokenizerData dup = small_bpe();
  dup.vocab[2] = "a";  // two tokens with the text "a"
  dup.merges = {};
  try {
    hf_tokenizer_files(dup, config_for(dup), "dup.h5 (/tokenizer)");
    FAIL() << "duplicate token text accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dup.h5 (/tokenizer)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tokens 0 and 2"), std::string::npos) << e.what();
  }
  TokenizerData custom = small_bpe();
  custom.pre = "custom";
  EXPECT_THROW(hf_tokenizer_files(custom, config_for(custom), "custom.h5"), InputError);
}

TEST(HfTokenizerFiles, SentencePieceWritesItsModelProto) {
  TokenizerData t;
  t.type = "spm";
  t.spm_model = std::string("\x0a\x03\x0a\x01x", 5);  // stored bytes are written as they are
  t.vocab = {"<unk>", "<s>", "</s>"};
  t.token_types = {kTokenUnknown, kTokenControl, kTokenControl};
  t.bos_id = 1;
  t.eos_id = 2;
  t.unk_id = 0;
  t.add_bos = true;
  const auto files = hf_tokenizer_files(t, config_for(t), "spm.h5");
  EXPECT_FALSE(files.count("tokenizer.json"));
  EXPECT_EQ(files.at("tokenizer.model"), t.spm_model);
  const json cfg = json::parse(files.at("tokenizer_config.json"));
  EXPECT_EQ(cfg.at("tokenizer_class"), "LlamaTokenizer");
  EXPECT_EQ(cfg.at("bos_token"), "<s>");
  EXPECT_EQ(cfg.at("unk_token"), "<unk>");
  EXPECT_EQ(cfg.at("add_bos_token"), true);
}

}  // namespace
}  // namespace linspec
