// SmolLM2's byte-level BPE against HF tokenizers on ~2 MB of real text: ids must be identical for
// every file of tests/reference/golden/tokenizer_smollm2.json (made by make_tokenizer_goldens.py),
// and decoding must give the text back. Missing model or corpus is a failure, not a skip.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "model/formats/gguf.h"
#include "model/formats/gguf_model.h"
#include "tokenizer_test_util.h"

namespace linspec {
namespace {

using nlohmann::json;
using testing::hex64;
using testing::xxh64_of_ids;

constexpr const char* kSetupHint = "run launch/setup.sh (model download + Debian package python3.11-doc)";

json load_golden() {
  std::string text;
  const auto path = testing::source_path("tests/reference/golden/tokenizer_smollm2.json");
  if (!testing::read_file(path, text)) ADD_FAILURE() << "golden file missing: " << path;
  return json::parse(text);
}

std::unique_ptr<Tokenizer> load_smollm2() {
  const auto gguf = testing::linspec_cache_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(gguf)) {
    ADD_FAILURE() << gguf << " is missing: " << kSetupHint;
    return nullptr;
  }
  return make_tokenizer(gguf_tokenizer(GgufFile(gguf.string())), gguf.string());
}

// Describes where our ids first leave the reference: the first differing block of the golden's block
// hashes (or exact position within the first ids), with our tokens and text around it.
std::string describe_mismatch(const Tokenizer& tok, const json& file, const std::vector<int32_t>& ids) {
  const auto& first = file.at("first_ids");
  for (size_t i = 0; i < first.size(); ++i)
    if (i >= ids.size() || ids[i] != first[i].get<int32_t>()) {
      std::string msg = "first mismatch at id " + std::to_string(i) + ": ours " +
                        (i < ids.size() ? std::to_string(ids[i]) : "<end>") + ", reference " + first[i].dump();
      const size_t lo = i >= 4 ? i - 4 : 0, hi = std::min(ids.size(), i + 4);
      return msg + ", text around: \"" + tok.decode(std::span(ids).subspan(lo, hi - lo)) + "\"";
    }
  const size_t block = 1024;
  const auto& blocks = file.at("block_xxh64");
  for (size_t b = 0; b * block < std::max(ids.size(), size_t(1)); ++b) {
    const size_t lo = b * block, n = std::min(block, ids.size() - lo);
    if (b >= blocks.size() || hex64(xxh64_of_ids(ids.data() + lo, n)) != blocks[b].get<std::string>()) {
      const std::string name = std::filesystem::path(file.at("path").get<std::string>()).filename().string();
      const std::string dump = (std::filesystem::temp_directory_path() / ("linspec_ids_" + name + ".u32")).string();
      if (FILE* f = std::fopen(dump.c_str(), "wb")) {
        std::fwrite(ids.data(), 4, ids.size(), f);  // little-endian hosts only, like the rest of linspec
        std::fclose(f);
      }
      return "first mismatching block: ids [" + std::to_string(lo) + ", " + std::to_string(lo + block) +
             "), our text there: \"" + tok.decode(std::span(ids).subspan(lo, std::min<size_t>(n, 48))) +
             "...\"; exact position: python3 tests/reference/make_tokenizer_goldens.py --compare " +
             file.at("path").get<std::string>() + " " + dump;
    }
  }
  return "only the total count differs";
}

TEST(TokenizerSmolLM2, MatchesHuggingFaceOnCorpus) {
  const json golden = load_golden();
  auto tok = load_smollm2();
  ASSERT_TRUE(tok);
  ASSERT_EQ(tok->vocab_size(), 49152);
  ASSERT_FALSE(tok->add_bos());

  size_t files = 0, matched_files = 0, bytes = 0, matched_bytes = 0, n_ids = 0;
  double seconds = 0;
  for (const auto& file : golden.at("files")) {
    const std::string path = file.at("path").get<std::string>();
    std::string text;
    if (!testing::read_file(testing::source_path(path), text)) {
      ADD_FAILURE() << "corpus file " << path << " is missing: " << kSetupHint;
      continue;
    }
    if (text.size() != file.at("bytes").get<size_t>() ||
        hex64(XXH64(text.data(), text.size(), 0)) != file.at("text_xxh64").get<std::string>()) {
      ADD_FAILURE() << path << " differs from the file the goldens were made from; "
                    << "regenerate with python3 tests/reference/make_tokenizer_goldens.py";
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tok->encode(text);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++files;
    bytes += text.size();
    n_ids += ids.size();
    const bool same = ids.size() == file.at("n_ids").get<size_t>() &&
                      hex64(xxh64_of_ids(ids.data(), ids.size())) == file.at("xxh64_of_ids").get<std::string>();
    if (same) {
      ++matched_files;
      matched_bytes += text.size();
    } else {
      ADD_FAILURE() << path << ": " << ids.size() << " ids vs reference " << file.at("n_ids") << "; "
                    << describe_mismatch(*tok, file, ids);
    }
    EXPECT_EQ(tok->decode(ids), text) << path << ": decode(encode(x)) != x";
  }
  std::printf("[tokenizer] compared %.2f MB in %zu files (%zu ids, %.1f MB/s): %zu/%zu files identical "
              "(%.2f%% of bytes)\n",
              bytes / 1e6, files, n_ids, bytes / 1e6 / std::max(seconds, 1e-9), matched_files, files,
              bytes ? 100.0 * matched_bytes / bytes : 0.0);
  EXPECT_GE(bytes, size_t(1) << 20) << "the corpus must hold at least 1 MB";
  EXPECT_EQ(matched_files, golden.at("files").size());
}

TEST(TokenizerSmolLM2, ChatTemplateTokens) {
  auto tok = load_smollm2();
  ASSERT_TRUE(tok);
  const std::string chat = "<|im_start|>user\nWhat is 12+7?<|im_end|>\n";
  const auto ids = tok->encode(chat);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);  // <|im_start|> is one control token, not text
  EXPECT_NE(std::find(ids.begin(), ids.end(), 2), ids.end());
  EXPECT_EQ(tok->decode(ids), chat);
  EXPECT_EQ(tok->decode(ids, {.skip_special = true}), "user\nWhat is 12+7?\n");
  // Without special parsing the same text is spelled out with ordinary tokens.
  const auto plain = tok->encode(chat, {.add_special = true, .parse_special = false});
  EXPECT_EQ(std::find(plain.begin(), plain.end(), 1), plain.end());
  EXPECT_EQ(tok->decode(plain), chat);
}

}  // namespace
}  // namespace linspec
