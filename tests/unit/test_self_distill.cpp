// Self-distilled draft data (serve/self_distill.h): continuations decoded as a batch equal each prompt's own
// generate() (greedy, with stop ids), sampled ones do not depend on the batch size, and the shards hold each prompt
// window of the source followed by its continuation, with the source's tokenizer fingerprint.
#include <gtest/gtest.h>

#include "core/error.h"
#include "serve/self_distill.h"
#include "speculative_test_util.h"

namespace linspec {
namespace {

constexpr int64_t kVocab = 32;

TEST(SelfDistill, BatchedContinuationsEqualSingleGenerations) {
  const LlamaModel m = testing::speculative_tiny_model("aug", 3, kVocab);
  const auto prompts = testing::speculative_prompts(7, kVocab, 4);
  GenerationConfig cfg;
  cfg.max_new_tokens = 20;
  cfg.stop_ids = {generate(m, prompts[0], cfg).tokens.at(4)};  // a token greedy decoding does emit
  const auto docs = continue_prompts(m, prompts, cfg, 3);
  ASSERT_EQ(docs.size(), prompts.size());
  int stopped = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> want = prompts[i];
    const GenerationResult g = generate(m, prompts[i], cfg);
    want.insert(want.end(), g.tokens.begin(), g.tokens.end());
    EXPECT_EQ(docs[i], want) << "prompt " << i;
    stopped += g.stopped;
  }
  EXPECT_GT(stopped, 0) << "no sequence met the stop id: the test does not see early ends";
  // Sampled: each sequence draws from its own stream, so the batch size changes nothing.
  cfg.sampling = {1.0, 0, 1.0, 9};
  EXPECT_EQ(continue_prompts(m, prompts, cfg, 1), continue_prompts(m, prompts, cfg, 4));
}

TEST(SelfDistill, ShardsHoldPromptWindowsAndTheirContinuations) {
  const LlamaModel m = testing::speculative_tiny_model("softmax", 5, kVocab);
  TokenShards source;
  source.tokenizer_fingerprint = 0xabcdef;
  for (uint32_t i = 0; i < 300; ++i) source.train.tokens.push_back((i * 7 + 3) % kVocab);
  for (uint32_t i = 0; i < 40; ++i) source.val.tokens.push_back((i * 5 + 1) % kVocab);
  source.train.doc_offsets = source.val.doc_offsets = {0};
  SelfDistillConfig cfg;
  cfg.train_sequences = 5, cfg.val_sequences = 2, cfg.prompt_len = 6, cfg.batch = 2;
  cfg.generation.max_new_tokens = 10;
  const TokenShards out = self_distill(m, source, cfg);
  EXPECT_EQ(out.tokenizer_fingerprint, 0xabcdefu);
  ASSERT_EQ(out.train.doc_offsets.size(), 5u);
  ASSERT_EQ(out.val.doc_offsets.size(), 2u);
  EXPECT_EQ(out.train.tokens.size(), 5u * 16);
  EXPECT_EQ(out.val.tokens.size(), 2u * 16);
  // Every train document starts with a 6-token window of the source's train split.
  for (uint64_t at : out.train.doc_offsets) {
    const auto first = out.train.tokens.begin() + static_cast<int64_t>(at);
    EXPECT_NE(std::search(source.train.tokens.begin(), source.train.tokens.end(), first, first + 6),
              source.train.tokens.end());
  }
  const auto vfirst = out.val.tokens.begin();
  EXPECT_NE(std::search(source.val.tokens.begin(), source.val.tokens.end(), vfirst, vfirst + 6), source.val.tokens.end());
  // A split shorter than one prompt is refused by name.
  source.train.source = "tiny.h5 (/train/tokens)";
  try {
    corpus_prompts(source.train, 1, 400, 0);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny.h5 (/train/tokens)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace linspec
