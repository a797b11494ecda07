// Token choice (greedy, temperature, top-k, top-p) and KV-cached generation on a tiny random model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "llama_test_util.h"
#include "model/generation.h"

namespace linspec {
namespace {

SamplingConfig sampling(double t, int64_t k, double p, uint64_t seed = 0) {
  SamplingConfig s;
  s.temperature = t, s.top_k = k, s.top_p = p, s.seed = seed;
  return s;
}

const std::vector<float> kLogits = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f, 3.0f};

TEST(Sampling, GreedyTakesTheFirstMaximum) {
  const auto p = sampling_distribution(kLogits.data(), 6, sampling(0, 0, 1));
  EXPECT_EQ(p[1], 1.0);
  Philox rng(1);
  EXPECT_EQ(choose_token(kLogits.data(), 6, sampling(0, 0, 1), rng), 1);
}

TEST(Sampling, TemperatureTopKTopPDistributions) {
  // Plain softmax at T = 2.
  auto p = sampling_distribution(kLogits.data(), 6, sampling(2.0, 0, 1.0));
  double z = 0;
  for (float l : kLogits) z += std::exp(l / 2.0);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(p[i], std::exp(kLogits[i] / 2.0) / z, 1e-12);
  // top-k 3 keeps ids 1, 5 (tied at 3.0) and 3, renormalised.
  p = sampling_distribution(kLogits.data(), 6, sampling(1.0, 3, 1.0));
  const double z3 = 2 * std::exp(3.0) + std::exp(2.5);
  EXPECT_NEAR(p[1], std::exp(3.0) / z3, 1e-12);
  EXPECT_NEAR(p[5], std::exp(3.0) / z3, 1e-12);
  EXPECT_NEAR(p[3], std::exp(2.5) / z3, 1e-12);
  EXPECT_EQ(p[0] + p[2] + p[4], 0.0);
  // top-p: the two 3.0 tokens carry ~0.63 of the mass at T = 1, so p = 0.6 keeps exactly those two.
  p = sampling_distribution(kLogits.data(), 6, sampling(1.0, 0, 0.6));
  EXPECT_NEAR(p[1], 0.5, 1e-12);
  EXPECT_NEAR(p[5], 0.5, 1e-12);
  // A tiny top_p still keeps one token.
  p = sampling_distribution(kLogits.data(), 6, sampling(1.0, 0, 1e-9));
  EXPECT_EQ(p[1], 1.0);
  EXPECT_THROW(sampling_distribution(kLogits.data(), 6, sampling(1.0, 0, 0.0)), InputError);
  EXPECT_THROW(sampling_distribution(kLogits.data(), 6, sampling(-1.0, 0, 1.0)), InputError);
}

// A vocabulary large enough that the nucleus spans several growths of the sorted prefix (256, 1024, 4096, all):
// the kept set and the probabilities equal a full sort's, with ties (logits on a coarse grid) broken by id.
TEST(Sampling, NucleusOfALargeVocabularyEqualsAFullSort) {
  const int64_t V = 6000;
  std::vector<float> logits(V);
  Philox rng(7);
  for (auto& l : logits) l = std::round(static_cast<float>(rng.uniform()) * 40.f) / 8.f;  // 321 distinct values
  for (double top_p : {0.05, 0.5, 0.9, 0.999, 1.0 - 1e-12}) {
    const double t = 0.7;
    std::vector<int32_t> order(V);
    for (int32_t i = 0; i < V; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    std::vector<double> w(V);
    double total = 0;
    for (int64_t i = 0; i < V; ++i) total += w[i] = std::exp((logits[order[i]] - logits[order[0]]) / t);
    int64_t keep = V;
    double mass = 0;
    for (int64_t i = 0; i < V; ++i)
      if ((mass += w[i] / total) >= top_p) {
        keep = i + 1;
        break;
      }
    double kept = 0;
    for (int64_t i = 0; i < keep; ++i) kept += w[i];
    std::vector<double> want(V, 0.0);
    for (int64_t i = 0; i < keep; ++i) want[order[i]] = w[i] / kept;
    const auto p = sampling_distribution(logits.data(), V, sampling(t, 0, top_p));
    int64_t kept_tokens = 0;
    for (int64_t i = 0; i < V; ++i) {
      ASSERT_EQ(p[i] > 0, want[i] > 0) << "top_p " << top_p << " token " << i;
      EXPECT_NEAR(p[i], want[i], 1e-12) << "top_p " << top_p << " token " << i;
      kept_tokens += p[i] > 0;
    }
    EXPECT_EQ(kept_tokens, keep) << "top_p " << top_p;
  }
}

TEST(Sampling, DrawsFollowTheDistribution) {
  const SamplingConfig cfg = sampling(1.5, 4, 0.95);
  const auto p = sampling_distribution(kLogits.data(), 6, cfg);
  Philox rng(99);
  const int n = 40000;
  std::vector<int> counts(6, 0);
  for (int i = 0; i < n; ++i) ++counts[choose_token(kLogits.data(), 6, cfg, rng)];
  for (int i = 0; i < 6; ++i) {
    const double sd = std::sqrt(n * p[i] * (1 - p[i])) + 1e-9;
    EXPECT_LT(std::abs(counts[i] - n * p[i]), 5 * sd + 1e-9) << "token " << i;
    if (p[i] == 0) EXPECT_EQ(counts[i], 0);
  }
}

TEST(Generation, GreedyEqualsArgmaxOfTheParallelForward) {
  LlamaModel m = LlamaModel::random(testing::tiny_llama_config(), 3, {DType::F32, {}, false, false});
  const std::vector<int32_t> prompt = {4, 8, 15, 16, 23};
  GenerationConfig cfg;
  cfg.max_new_tokens = 6;
  const GenerationResult r = generate(m, prompt, cfg);
  ASSERT_EQ(r.tokens.size(), 6u);
  std::vector<int32_t> seq = prompt;
  NoGradGuard g;
  for (int32_t tok : r.tokens) {
    const Tensor logits = m.forward(Tensor::from_vector(seq, {1, static_cast<int64_t>(seq.size())}));
    const auto last = logits.select(1, static_cast<int64_t>(seq.size()) - 1).to_vector<float>();
    EXPECT_EQ(tok, std::max_element(last.begin(), last.end()) - last.begin());
    seq.push_back(tok);
  }
}

TEST(Generation, SeededSamplingIsReproducibleAndStops) {
  LlamaModel m = LlamaModel::random(testing::tiny_llama_config(), 5, {DType::F32, {}, false, false});
  GenerationConfig cfg;
  cfg.max_new_tokens = 12;
  cfg.sampling = sampling(1.0, 0, 1.0, 77);
  const auto a = generate(m, {1, 2, 3}, cfg), b = generate(m, {1, 2, 3}, cfg);
  EXPECT_EQ(a.tokens, b.tokens);
  cfg.sampling.seed = 78;
  const auto c = generate(m, {1, 2, 3}, cfg);
  EXPECT_NE(a.tokens, c.tokens);  // 12 draws from ~uniform over 53 tokens: a collision is ~impossible
  cfg.sampling.seed = 77;
  cfg.stop_ids = {a.tokens[3]};
  const auto d = generate(m, {1, 2, 3}, cfg);
  EXPECT_TRUE(d.stopped);
  EXPECT_LE(d.tokens.size(), 4u);
  EXPECT_EQ(d.tokens.back(), a.tokens[3]);
}

}  // namespace
}  // namespace linspec
