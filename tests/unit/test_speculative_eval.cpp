// `linspec eval --decode --speculative heads|draft --context-sweep` and `linspec generate --speculative` through the
// binary on a tiny aug checkpoint that carries /draft/heads and /draft/model: the report holds every field the
// issue lists, speculative greedy output is identical to AR, the recurrent state does not grow with context.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/byte_unicode.h"
#include "model/checkpoint.h"
#include "model/draft_heads.h"
#include "model/draft_model.h"
#include "serve/decode_bench.h"
#include "speculative_test_util.h"

namespace linspec {
namespace {

namespace fs = std::filesystem;

TokenizerData byte_tokenizer() {
  TokenizerData d;
  d.type = "bpe";
  d.pre = "gpt2";
  d.vocab.push_back("<|end|>");
  d.token_types.push_back(kTokenControl);
  for (int b = 0; b < 256; ++b) {
    d.vocab.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    d.token_types.push_back(kTokenNormal);
  }
  d.bos_id = d.eos_id = 0;
  return d;
}

struct CliRun {
  int rc;
  std::string out;
};
CliRun run_cli(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt";
  const std::string cmd = std::string(LINSPEC_BINARY) + " " + args + " >" + out.string() + " 2>" + (dir / "stderr.txt").string();
  const int status = std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WEXITSTATUS(status), ss.str()};
}

class SpeculativeEval : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(LINSPEC_BINARY)) << LINSPEC_BINARY << " is missing: build the linspec target first";
    dir_ = fs::path(::testing::TempDir()) / ("linspec_spec_eval_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const LlamaModel m = testing::speculative_tiny_model("aug", 17, 257);
    Checkpoint ck;
    ck.config = m.config();
    ck.tensors = m.checkpoint_tensors();
    ck.tokenizer = byte_tokenizer();
    DraftHeads heads = DraftHeads::init_from(m, {}, false);
    Philox rng(2);
    for (const auto& [name, t] : heads.tensors())
      if (name.find("/res") != std::string::npos) testing::fill_normal(t, rng, 0.3);
    LlamaOptions o;
    o.requires_grad = false;
    const LlamaModel draft = make_draft_model(m, 1, o);
    ckpt_ = (dir_ / "tiny.h5").string();
    write_hdf5_atomically(ckpt_, [&](H5Handle f) {
      write_checkpoint_contents(f, ck);
      write_draft_heads(f, heads);
      write_draft_model(f, draft);
    });
    data_ = (dir_ / "text.txt").string();
    std::ofstream(data_) << "Speculative decoding verifies a tree of guesses in one pass. Linear attention keeps a "
                            "fixed-size state, so memory does not grow with the context; the KV cache does.\n";
  }
  void TearDown() override {
    if (!std::getenv("LINSPEC_KEEP_TEST_FILES")) fs::remove_all(dir_);
  }
  nlohmann::json report(const std::string& name) {
    std::ifstream in(dir_ / name);
    return nlohmann::json::parse(in);
  }
  fs::path dir_;
  std::string ckpt_, data_;
};

// Hand-counted: within one output, each 4-gram that equals an earlier one of that output counts once.
TEST(RepeatedNgrams, CountsRepeatsWithinEachOutput) {
  EXPECT_EQ(linspec::repeated_ngram_fraction({{1, 2, 3, 4, 5, 6, 7}}), 0.0);            // 4 distinct 4-grams
  EXPECT_EQ(linspec::repeated_ngram_fraction({{1, 2, 3, 1, 2, 3, 1, 2, 3}}), 3.0 / 6.0);  // 123 1, 231 2, 312 3 repeat
  EXPECT_EQ(linspec::repeated_ngram_fraction({{7, 7, 7, 7, 7}}), 1.0 / 2.0);
  // The same 4-gram in two outputs is not a repeat; outputs shorter than n add nothing.
  EXPECT_EQ(linspec::repeated_ngram_fraction({{1, 2, 3, 4}, {1, 2, 3, 4}, {9, 9}}), 0.0);
  EXPECT_EQ(linspec::repeated_ngram_fraction({}), 0.0);
  EXPECT_EQ(linspec::repeated_ngram_fraction({{1, 2, 1, 2, 1}}, 2), 2.0 / 4.0);
}

TEST_F(SpeculativeEval, ReportCarriesEveryFieldAndMatchesAr) {
  const std::string common = " --checkpoint " + ckpt_ + " --data " + data_;
  CliRun r = run_cli("--threads 1 eval" + common + " --ppl --ctx 32 --decode --speculative heads --prompts 3 --prompt-len 12 "
              "--new-tokens 24 --context-sweep 16,64 --sweep-decode-tokens 3 --json " + (dir_ / "h.json").string(), dir_);
  ASSERT_EQ(r.rc, 0) << std::ifstream(dir_ / "stderr.txt").rdbuf();
  const auto h = report("h.json");
  for (const char* key : {"checkpoint", "hardware", "threads", "dtype", "precision", "attention", "ppl", "decode",
                          "speculative", "context_sweep"})
    EXPECT_TRUE(h.contains(key)) << key;
  for (const char* key : {"cpu", "cores", "threads"}) EXPECT_TRUE(h["hardware"].contains(key)) << key;
  for (const char* key : {"prefill_tokens_per_s", "decode_tokens_per_s", "prompt_tokens", "new_tokens",
                          "repeated_4gram_fraction"})
    EXPECT_TRUE(h["decode"].contains(key)) << key;
  const auto& s = h["speculative"];
  for (const char* key : {"mode", "tree", "decode_tokens_per_s", "mean_accepted_tokens_per_step", "bonus_token_counted",
                          "mean_accepted_candidates_per_step", "speedup_vs_ar", "identical_to_ar", "steps",
                          "accepted_histogram"})
    EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(s["mode"], "heads");
  EXPECT_EQ(s["tree"]["name"], "default");
  EXPECT_EQ(s["tree"]["nodes"], 64);
  EXPECT_TRUE(s["identical_to_ar"].get<bool>());
  EXPECT_TRUE(s["bonus_token_counted"].get<bool>());
  EXPECT_NEAR(s["mean_accepted_tokens_per_step"].get<double>(), s["mean_accepted_candidates_per_step"].get<double>() + 1, 1e-9);
  EXPECT_EQ(s["new_tokens"], 3 * 24);
  EXPECT_EQ(h["attention"]["preset"], "aug");
  const auto& pts = h["context_sweep"]["points"];
  ASSERT_EQ(pts.size(), 2u);
  for (const auto& p : pts)
    for (const char* key : {"context", "state_bytes", "rss_bytes", "peak_rss_bytes", "decode_tokens_per_s", "prefill_s"})
      EXPECT_TRUE(p.contains(key)) << key;
  EXPECT_EQ(pts[0]["state_bytes"], pts[1]["state_bytes"]) << "the aug state must not grow with the context";
  const auto plot = h["context_sweep"]["plot"];
  if (plot.is_string()) {
    EXPECT_GT(fs::file_size(plot.get<std::string>()), 1000u);
  }

  r = run_cli("--threads 1 eval" + common + " --speculative draft --gamma 3 --prompts 2 --prompt-len 8 --new-tokens 20 --json " +
              (dir_ / "d.json").string(), dir_);
  ASSERT_EQ(r.rc, 0) << std::ifstream(dir_ / "stderr.txt").rdbuf();
  const auto d = report("d.json");
  EXPECT_EQ(d["speculative"]["mode"], "draft");
  EXPECT_EQ(d["speculative"]["gamma"], 3);
  EXPECT_EQ(d["speculative"]["draft_layers"], 1);
  EXPECT_TRUE(d["speculative"]["identical_to_ar"].get<bool>());
  EXPECT_TRUE(d.contains("decode"));
}

TEST_F(SpeculativeEval, GenerateSpeculativePrintsTheGreedyText) {
  const std::string base =
      "--threads 1 generate --checkpoint " + ckpt_ + " --prompt 'Linear attention' --max-new 40 --ignore-eos";
  const CliRun off = run_cli(base, dir_);
  ASSERT_EQ(off.rc, 0);
  EXPECT_FALSE(off.out.empty());
  for (const std::string mode : {" --speculative heads", " --speculative draft --gamma 2",
                                  " --speculative draft --draft first-layers:1", " --speculative heads --fresh-heads"}) {
    const CliRun r = run_cli(base + mode, dir_);
    ASSERT_EQ(r.rc, 0) << mode;
    EXPECT_EQ(r.out, off.out) << mode;
  }
  EXPECT_EQ(run_cli(base + " --speculative draft --draft first-layers:9", dir_).rc, 2);
  EXPECT_EQ(run_cli(base + " --speculative draft --draft /nonexistent.h5", dir_).rc, 2);
  EXPECT_EQ(run_cli(base + " --speculative heads --tree /nonexistent.json", dir_).rc, 2);
}

}  // namespace
}  // namespace linspec
