// Speculative decoding is lossless: greedy speculative output (draft heads over a static tree, or a draft model's
// chain) equals plain AR greedy token for token, for softmax and aug targets, prompts shorter than the conv taps and
// generations crossing many groups (G = 8); static batches match single runs; tree files are validated.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "model/draft_heads.h"
#include "model/draft_model.h"
#include "model/feature_draft.h"
#include "model/generation.h"
#include "serve/speculative.h"
#include "serve/tree.h"
#include "speculative_test_util.h"

namespace linspec {
namespace {

using testing::random_feature_draft;
using testing::speculative_prompts;
using testing::speculative_tiny_model;

constexpr int64_t kVocab = 32;

// Heads with random residual blocks so their candidates differ from the LM head's (and from each other).
DraftHeads random_heads(const LlamaModel& target, uint64_t seed, bool shared = false) {
  DraftHeadsConfig cfg;
  cfg.shared_projection = shared;
  DraftHeads heads = DraftHeads::init_from(target, cfg, false);
  Philox rng(seed);
  for (const auto& [name, t] : heads.tensors())
    if (name.find("/res") != std::string::npos) testing::fill_normal(t, rng, 0.3);
  return heads;
}

std::vector<std::vector<int32_t>> ar_greedy(const LlamaModel& m, const std::vector<std::vector<int32_t>>& prompts,
                                            int64_t n, std::vector<int64_t> stops = {}) {
  std::vector<std::vector<int32_t>> out;
  GenerationConfig cfg;
  cfg.max_new_tokens = n;
  cfg.stop_ids = stops;
  for (const auto& p : prompts) out.push_back(generate(m, p, cfg).tokens);
  return out;
}

// A dynamic tree's speculator learns acceptance chances from every drafting step (at least one observation per
// accepted candidate: its own), and reports what they promised for each step.
void expect_calibrated(const Speculator& spec, const SpeculativeStats& stats, const std::string& what) {
  EXPECT_EQ(stats.expected_steps, stats.steps) << what;
  EXPECT_GE(spec.calibration().observations(), stats.accepted_candidates) << what;
  EXPECT_GE(stats.expected_tokens, static_cast<double>(stats.expected_steps)) << what << ": at least the bonus token";
}

class GreedyLossless : public ::testing::TestWithParam<std::string> {};

// What the draft heads read: the incremental and tree forms' hidden states agree with the parallel forward's.
TEST_P(GreedyLossless, HiddenStatesMatchTheParallelForward) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 3, kVocab);
  const std::vector<int32_t> prompt{1, 5, 9, 2, 7, 7, 30, 4, 11, 3};
  const int64_t D = m.config().hidden_size, P = static_cast<int64_t>(prompt.size());
  DecodeState state = m.new_decode_state(1, 64);
  const std::vector<float> got = m.decode_hidden(state, Tensor::from_vector(prompt, {1, P})).to_vector<float>();
  // A chain tree over the prefix is the same sequence continued: its node k sits at position P + k.
  const std::vector<int32_t> chain{8, 2, 6};
  const std::vector<int32_t> parent{-1, 0, 1};
  const std::vector<float> tree =
      m.verify_tree_hidden(state, Tensor::from_vector(chain, {3}), parent).to_vector<float>();
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), chain.begin(), chain.end());
  const std::vector<float> ref =
      m.forward_hidden(Tensor::from_vector(all, {1, static_cast<int64_t>(all.size())})).to_vector<float>();
  for (int64_t i = 0; i < P * D; ++i) ASSERT_NEAR(got[i], ref[i], 2e-4) << "prefix element " << i;
  for (int64_t i = 0; i < 3 * D; ++i) ASSERT_NEAR(tree[i], ref[P * D + i], 2e-4) << "tree element " << i;
}

TEST_P(GreedyLossless, HeadsTreeEqualsAutoregressive) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 11, kVocab);
  const DraftHeads heads = random_heads(m, 12);
  const Speculator spec(m, heads, default_tree(heads.count(), 64));
  const auto prompts = speculative_prompts(20, kVocab, 13);
  const auto ar = ar_greedy(m, prompts, 40);
  GenerationConfig cfg;
  cfg.max_new_tokens = 40;
  SpeculativeStats stats;
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(spec.generate(prompts[i], cfg, &stats).tokens, ar[i]) << "prompt " << i << " (" << prompts[i].size()
                                                                    << " tokens)";
  EXPECT_EQ(stats.new_tokens, 20 * 40);
  // The trees must actually be used: some steps accept candidates, some accept several.
  EXPECT_GT(stats.accepted_candidates, 0);
  EXPECT_GT(stats.accepted_histogram.size(), 2u);
  EXPECT_LT(stats.steps, stats.new_tokens);
}

// Inference weights (LlamaModel::set_inference_weights: f32, bf16, and Q8 for `--weights int8`): bf16 and Q8 change
// the logits by their rounding only, and at each format the speculative output — heads over a tree, a draft model's
// chain, drafts converted as load_speculator does — equals AR token for token (every format's decode GEMM is
// batch-invariant, so tree verification reproduces the decode steps exactly).
TEST_P(GreedyLossless, InferenceWeightsSpeculativeEqualsAutoregressiveAtTheSameWeights) {
  for (DType format : {DType::F32, DType::BF16, DType::Q8}) {
    SCOPED_TRACE(dtype_name(format));
    LlamaModel m = speculative_tiny_model(GetParam(), 11, kVocab);
    const std::vector<int32_t> probe{1, 5, 9, 2, 7, 7, 30, 4};
    const Tensor ids = Tensor::from_vector(probe, {1, 8});
    const std::vector<float> f32 = m.forward(ids).to_vector<float>();
    DraftHeads heads = random_heads(m, 12);
    LlamaOptions o;
    o.requires_grad = false;
    LlamaModel draft = make_draft_model(m, 1, o, true);
    FeatureDraft eagle = random_feature_draft(m, 14, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20});
    m.set_inference_weights(format);
    heads.set_inference_weights(format);
    draft.set_inference_weights(format);
    eagle.set_inference_weights(format);
    EXPECT_EQ(m.layer(0).o_proj.dtype(), format);
    const std::vector<float> rounded = m.forward(ids).to_vector<float>();
    if (format == DType::F32) {
      // f32 decodes through the batch-invariant weight-row kernel; the parallel forward keeps the library GEMM.
      EXPECT_EQ(m.options().precision, ops::MatmulPrecision::F32BatchInvariant);
      EXPECT_EQ(rounded, f32);
    } else {
      EXPECT_EQ(m.layer(0).qkv_proj.dtype(), format);  // q, k, v and gate, up fused into one GEMM each
      EXPECT_EQ(m.layer(0).gate_up_proj.dtype(), format);
      double worst = 0, scale = 0, moved = 0;
      for (size_t i = 0; i < f32.size(); ++i) {
        worst = std::max(worst, double(std::fabs(rounded[i] - f32[i])));
        scale = std::max(scale, double(std::fabs(f32[i])));
        moved += rounded[i] != f32[i];
      }
      EXPECT_LT(worst / scale, 0.05) << "the inference weights changed the logits by more than rounding";
      EXPECT_GT(moved, 0) << "the inference weights were not used";
    }
    const auto prompts = speculative_prompts(10, kVocab, 13);
    const auto ar = ar_greedy(m, prompts, 40);
    GenerationConfig cfg;
    cfg.max_new_tokens = 40;
    const Speculator tree(m, heads, default_tree(heads.count(), 64));
    const Speculator chain(m, draft, 3);
    DecodeCost cost;
    cost.nodes = {1, 16};
    cost.verify_ms = {1.0, 1.0};
    const Speculator by_eagle(m, eagle, cost, {.max_nodes = 12, .depth = 4, .expand = 3, .top_k = 4});
    for (const Speculator* spec : {&tree, &chain, &by_eagle}) {
      SpeculativeStats stats;
      for (size_t i = 0; i < prompts.size(); ++i)
        EXPECT_EQ(spec->generate(prompts[i], cfg, &stats).tokens, ar[i]) << spec->mode() << ", prompt " << i;
      EXPECT_GT(stats.accepted_candidates, 0) << spec->mode();
    }
  }
}

// Drafting switched off and on between steps (what the server does under load): every draft kind — heads, a draft
// model's chain, a feature draft — stays lossless, as one batch of all prompts; a step without drafting verifies
// each sequence's root alone.
TEST_P(GreedyLossless, DraftingSwitchedOffAndOnBetweenStepsEqualsAutoregressive) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 11, kVocab);
  const DraftHeads heads = random_heads(m, 12);
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel draft = make_draft_model(m, 1, o, true);
  const FeatureDraft eagle = random_feature_draft(m, 14);
  DecodeCost cost;
  cost.nodes = {1, 16};
  cost.verify_ms = {1.0, 1.0};
  const Speculator tree(m, heads, default_tree(heads.count(), 16)), chain(m, draft, 3),
      by_eagle(m, eagle, cost, {.max_nodes = 12, .depth = 4, .expand = 3, .top_k = 4});
  auto prompts = speculative_prompts(6, kVocab, 13);
  // A prompt longer than the feature draft's backlog limit: its first step, without drafting, absorbs the prompt.
  prompts.push_back(speculative_prompts(1, kVocab, 14)[0]);
  while (static_cast<int64_t>(prompts.back().size()) <= Speculator::kMaxEagleBacklog)
    prompts.back().push_back(static_cast<int32_t>(prompts.back().size() * 7 % kVocab));
  const auto ar = ar_greedy(m, prompts, 40);
  GenerationConfig cfg;
  cfg.max_new_tokens = 40;
  for (const Speculator* spec : {&tree, &chain, &by_eagle}) {
    std::vector<SpeculativeSequence> seqs;
    for (const auto& p : prompts) seqs.push_back(spec->start(p, cfg, Philox(0)));
    SpeculativeStats drafting, plain;
    for (int64_t step = 0;; ++step) {
      std::vector<SpeculativeSequence*> live;
      for (auto& s : seqs)
        if (!s.done()) live.push_back(&s);
      if (live.empty()) break;
      const bool draft = step % 3 == 2;  // runs of two steps without drafting, then one with
      spec->step(live, draft ? drafting : plain, draft);
    }
    for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i].take_result().tokens, ar[i]) << spec->mode() << " " << i;
    EXPECT_GT(plain.steps, 0);
    EXPECT_EQ(plain.verified_nodes, plain.steps) << spec->mode() << ": a step without drafting verifies the root alone";
    EXPECT_GT(drafting.accepted_candidates, 0) << spec->mode();
  }
}

// drafting_pays: true until a drafting step has been measured; then τ · verify(B) > draft + verify(B · ν) with the
// running means: a draft dearer than any saving never pays, free verification and a free draft pay while τ > 1.
TEST_P(GreedyLossless, DraftingPaysOnlyWhenTheCostModelSaysSo) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 11, kVocab);
  const DraftHeads heads = random_heads(m, 12);
  const auto prompts = speculative_prompts(4, kVocab, 13);
  GenerationConfig cfg;
  cfg.max_new_tokens = 24;
  for (double draft_ms : {1e6, 0.0}) {
    DecodeCost cost;
    cost.nodes = {1, 16};
    cost.verify_ms = {1.0, 1.0};
    cost.draft_ms = draft_ms;
    const Speculator spec(m, heads, cost, 16);
    EXPECT_TRUE(spec.drafting_pays(4)) << "nothing measured yet";
    SpeculativeStats stats;
    spec.generate(prompts, cfg, &stats);
    ASSERT_GT(stats.mean_tokens_per_step(), 1.0);
    EXPECT_EQ(spec.drafting_pays(1), draft_ms == 0.0) << "draft_ms " << draft_ms;
    EXPECT_EQ(spec.drafting_pays(16), draft_ms == 0.0) << "draft_ms " << draft_ms;
  }
}

// `--tree auto`: a tree chosen each step from the heads' probabilities and a cost model; lossless whatever it picks
// (a free cost model grows 16-node trees, a dearer one small ones).
TEST_P(GreedyLossless, DynamicTreesEqualAutoregressive) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 11, kVocab);
  const DraftHeads heads = random_heads(m, 12);
  const auto prompts = speculative_prompts(10, kVocab, 13);
  const auto ar = ar_greedy(m, prompts, 40);
  GenerationConfig cfg;
  cfg.max_new_tokens = 40;
  for (double slope : {0.0, 0.2}) {
    DecodeCost cost;
    cost.nodes = {1, 16};
    cost.verify_ms = {1.0, 1.0 + 15 * slope};
    const Speculator spec(m, heads, cost, 16);
    SpeculativeStats stats;
    for (size_t i = 0; i < prompts.size(); ++i)
      EXPECT_EQ(spec.generate(prompts[i], cfg, &stats).tokens, ar[i]) << "slope " << slope << ", prompt " << i;
    const double nodes_per_step = static_cast<double>(stats.verified_nodes) / static_cast<double>(stats.steps);
    if (slope == 0.0) EXPECT_GT(nodes_per_step, 8.0) << "free verification should grow the trees";
    else EXPECT_LT(nodes_per_step, 8.0);
    EXPECT_GT(stats.accepted_candidates, 0) << "slope " << slope;
    expect_calibrated(spec, stats, "heads, slope " + std::to_string(slope));
  }
}

// EAGLE-style trees from a feature draft: lossless whatever the draft proposes and whatever tree size the cost
// model picks, with the full or a reduced vocabulary, sequence by sequence and as one batch with stop ids (the
// draft's state absorbs the target's hidden states of each step's accepted path, across group boundaries).
TEST_P(GreedyLossless, FeatureDraftTreesEqualAutoregressive) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 15, kVocab);
  const FeatureDraft full = random_feature_draft(m, 16), reduced = random_feature_draft(m, 17, {0, 3, 5, 8, 9, 12, 20, 31});
  const auto prompts = speculative_prompts(8, kVocab, 18);
  const auto ar = ar_greedy(m, prompts, 40);
  GenerationConfig cfg;
  cfg.max_new_tokens = 40;
  for (const FeatureDraft* d : {&full, &reduced})
    for (double slope : {0.0, 0.2}) {
      DecodeCost cost;
      cost.nodes = {1, 16};
      cost.verify_ms = {1.0, 1.0 + 15 * slope};
      const Speculator spec(m, *d, cost, {.max_nodes = 16, .depth = 5, .expand = 3, .top_k = 4});
      SpeculativeStats stats;
      for (size_t i = 0; i < prompts.size(); ++i)
        EXPECT_EQ(spec.generate(prompts[i], cfg, &stats).tokens, ar[i])
            << "vocab " << d->vocab() << ", slope " << slope << ", prompt " << i;
      const double nodes_per_step = static_cast<double>(stats.verified_nodes) / static_cast<double>(stats.steps);
      if (slope == 0.0) {
        EXPECT_GT(nodes_per_step, 8.0) << "free verification should grow the trees";
      }
      EXPECT_GT(stats.accepted_candidates, 0) << "vocab " << d->vocab() << ", slope " << slope;
      expect_calibrated(spec, stats, "eagle, vocab " + std::to_string(d->vocab()) + ", slope " + std::to_string(slope));
    }
  // The target's own last layer as the draft, fed its features: a draft that mostly agrees, in one batch with stops.
  const auto stopped = ar_greedy(m, prompts, 40, {7});
  cfg.stop_ids = {7};
  DecodeCost cost;
  cost.nodes = {1, 16};
  cost.verify_ms = {1.0, 2.0};
  const auto batch = Speculator(m, full, cost, {}).generate(prompts, cfg);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(batch[i].tokens, stopped[i]) << "batch, prompt " << i;
  // A context window of 12 pairs: the draft state is rebuilt from the last 6 every few steps (and at once for the
  // longer prompts), alone and in a batch; still the target's output, and the draft still gets tokens accepted.
  cfg.stop_ids = {};
  const Speculator windowed(m, full, cost, {.max_nodes = 16, .depth = 5, .expand = 3, .top_k = 4, .context = 12});
  SpeculativeStats stats;
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(windowed.generate(prompts[i], cfg, &stats).tokens, ar[i]) << "window 12, prompt " << i;
  EXPECT_GT(stats.accepted_candidates, 0);
  const auto windowed_batch = windowed.generate(prompts, cfg);
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(windowed_batch[i].tokens, ar[i]) << "window 12, batch, prompt " << i;
}

TEST_P(GreedyLossless, DraftModelChainEqualsAutoregressive) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 21, kVocab);
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel draft = make_draft_model(m, 1, o, true);
  const auto prompts = speculative_prompts(20, kVocab, 23);
  const auto ar = ar_greedy(m, prompts, 36);
  GenerationConfig cfg;
  cfg.max_new_tokens = 36;
  for (int64_t gamma : {1, 3, 5}) {
    const Speculator spec(m, draft, gamma);
    SpeculativeStats stats;
    for (size_t i = 0; i < prompts.size(); ++i)
      EXPECT_EQ(spec.generate(prompts[i], cfg, &stats).tokens, ar[i]) << "gamma " << gamma << ", prompt " << i;
    EXPECT_GT(stats.accepted_candidates, 0) << "gamma " << gamma;
  }
  // The draft as the target's own copy accepts everything: γ + 1 tokens per step.
  const Speculator self(m, m, 4);
  SpeculativeStats stats;
  EXPECT_EQ(self.generate(prompts[3], cfg, &stats).tokens, ar[3]);
  EXPECT_EQ(stats.steps, 7);  // 35 tokens after the prefill's first, 5 per step
  EXPECT_EQ(stats.accepted_candidates, 4 * stats.steps);
}

TEST_P(GreedyLossless, StaticBatchAndStopIdsMatchSingleRuns) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 31, kVocab);
  const DraftHeads heads = random_heads(m, 32, /*shared=*/true);
  const auto prompts = speculative_prompts(6, kVocab, 33);
  const auto ar = ar_greedy(m, prompts, 33, {7});
  GenerationConfig cfg;
  cfg.max_new_tokens = 33;
  cfg.stop_ids = {7};
  const Speculator by_heads(m, heads, default_tree(heads.count(), 24));
  const auto batch = by_heads.generate(prompts, cfg);
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel draft = make_draft_model(m, 1, o, true);
  const auto chained = Speculator(m, draft, 4).generate(prompts, cfg);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batch[i].tokens, ar[i]) << "heads batch, prompt " << i;
    EXPECT_EQ(chained[i].tokens, ar[i]) << "draft batch, prompt " << i;
    EXPECT_EQ(batch[i].stopped, !ar[i].empty() && ar[i].back() == 7);
  }
}

// The server's continuous batch: sequences start between steps with their own lengths and stop ids, and leave when
// done; each one's tokens equal its own greedy AR run, for static, dynamic (batch-shared cost) and chain drafts.
TEST_P(GreedyLossless, SequencesJoiningAndLeavingABatchEqualAutoregressive) {
  const LlamaModel m = speculative_tiny_model(GetParam(), 41, kVocab);
  const DraftHeads heads = random_heads(m, 42, /*shared=*/true);
  const auto prompts = speculative_prompts(6, kVocab, 43);
  std::vector<GenerationConfig> cfgs(prompts.size());
  std::vector<std::vector<int32_t>> ar;
  for (size_t i = 0; i < prompts.size(); ++i) {
    cfgs[i].max_new_tokens = 9 + 7 * static_cast<int64_t>(i % 3);
    if (i % 2) cfgs[i].stop_ids = {7};
    ar.push_back(generate(m, prompts[i], cfgs[i]).tokens);
  }
  DecodeCost cost;
  cost.nodes = {1, 16};
  cost.verify_ms = {1.0, 2.5};
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel draft = make_draft_model(m, 1, o, true);
  const FeatureDraft eagle = random_feature_draft(m, 44);
  const Speculator by_tree(m, heads, default_tree(heads.count(), 24)), by_cost(m, heads, cost, 16),
      by_draft(m, draft, 3), by_eagle(m, eagle, cost, {.max_nodes = 12, .depth = 4, .expand = 3, .top_k = 4});
  for (const Speculator* spec : {&by_tree, &by_cost, &by_draft, &by_eagle}) {
    std::vector<SpeculativeSequence> seqs;
    seqs.reserve(prompts.size());
    SpeculativeStats stats;
    for (int64_t step = 0; step < 200; ++step) {
      if (step % 2 == 0 && seqs.size() < prompts.size()) {  // one joins every other step
        const size_t i = seqs.size();
        seqs.push_back(spec->start(prompts[i], cfgs[i], Philox(0), &stats));
      }
      std::vector<SpeculativeSequence*> live;
      for (auto& s : seqs)
        if (!s.done()) live.push_back(&s);
      if (live.empty() && seqs.size() == prompts.size()) break;
      spec->step(live, stats);
    }
    ASSERT_EQ(seqs.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_TRUE(seqs[i].done());
      EXPECT_EQ(seqs[i].tokens(), ar[i]) << spec->describe().dump() << ", prompt " << i;
    }
    EXPECT_GT(stats.accepted_candidates, 0) << spec->describe().dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, GreedyLossless, ::testing::Values("softmax", "aug"));

// ---- trees ----

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/linspec_tree_" + name + ".json";
  std::ofstream(path) << text;
  return path;
}

TEST(Trees, DefaultTreeIsPrefixClosedWithinDepth) {
  const TreeSpec t = default_tree(4, 64);
  EXPECT_EQ(t.nodes(), 64);
  EXPECT_LE(t.max_depth, 4);
  EXPECT_GE(t.max_depth, 3);
  EXPECT_EQ(t.parent[0], -1);
  for (int64_t i = 1; i < t.nodes(); ++i) {
    ASSERT_GE(t.parent[i], 0);
    ASSERT_LT(t.parent[i], i);
    EXPECT_EQ(t.depth[i], t.depth[t.parent[i]] + 1);
  }
  EXPECT_GE(t.top_k[0], t.top_k.back());  // wider near the root
  EXPECT_EQ(default_tree(2, 16).max_depth, 2);
  const TreeSpec c = chain_tree(3);
  EXPECT_EQ(c.parent, (std::vector<int32_t>{-1, 0, 1, 2}));
}

TEST(Trees, JsonFilesParse) {
  const TreeSpec a = load_tree(write_temp("ok", R"({"paths": [[1], [0], [0, 0], [0, 1], [0, 0, 2]]})"), 4);
  EXPECT_EQ(a.nodes(), 6);
  EXPECT_EQ(a.parent, (std::vector<int32_t>{-1, 0, 0, 1, 1, 3}));  // sorted: [0] [1] [0,0] [0,1] [0,0,2]
  EXPECT_EQ(a.rank, (std::vector<int32_t>{-1, 0, 1, 0, 1, 2}));
  EXPECT_EQ(a.top_k, (std::vector<int64_t>{2, 2, 3}));
  const TreeSpec b = load_tree(write_temp("list", "[[0], [0, 0]]"), 2);
  EXPECT_EQ(b.nodes(), 3);
}

TEST(Trees, BadFilesAreInputErrorsNamingTheFile) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"json", "{paths: "},
      {"nokey", R"({"nodes": [[0]]})"},
      {"notlist", R"({"paths": 3})"},
      {"pathnotlist", R"({"paths": [0, 1]})"},
      {"empty", R"({"paths": []})"},
      {"emptypath", R"({"paths": [[0], []]})"},
      {"negative", R"({"paths": [[-1]]})"},
      {"float", R"({"paths": [[0.5]]})"},
      {"orphan", R"({"paths": [[0], [1, 0]]})"},
      {"dup", R"({"paths": [[0], [0]]})"},
      {"deep", R"({"paths": [[0], [0, 0], [0, 0, 0]]})"},
  };
  for (const auto& [name, text] : bad) {
    const std::string path = write_temp(name, text);
    try {
      load_tree(path, 2);
      ADD_FAILURE() << name << ": no error";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << name << ": " << e.what();
    }
  }
  EXPECT_THROW(load_tree("/nonexistent/tree.json", 4), InputError);
  // A tree deeper than the heads is refused when the speculator is built.
  const LlamaModel m = speculative_tiny_model("softmax", 1, kVocab);
  DraftHeadsConfig two;
  two.count = 2;
  const DraftHeads heads = DraftHeads::init_from(m, two, false);
  EXPECT_THROW(Speculator(m, heads, default_tree(4, 64)), InputError);
}

}  // namespace
}  // namespace linspec
