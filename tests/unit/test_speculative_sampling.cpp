// Speculative sampling preserves the target's distribution exactly. Chi-square tests over >= 20k draws on tiny
// vocabularies for the acceptance rules themselves (chain rejection with a draft q, the tree rule with the heads'
// point-mass candidates), each with a deliberately wrong rule as a negative control, and end to end through the
// Speculator on a tiny model against the exact two-token distribution enumerated with decode().
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "model/draft_model.h"
#include "serve/acceptance.h"
#include "serve/speculative.h"
#include "speculative_test_util.h"

namespace linspec {
namespace {

// Pearson chi-square of counts against expected probabilities (bins with expectation < 5 merged), as a z-score by
// the Wilson–Hilferty transform: z > 4 means p < 3e-5 that the counts came from `expected`.
double chi_square_z(const std::map<int64_t, int64_t>& counts, const std::map<int64_t, double>& expected, int64_t n) {
  double chi = 0, merged_obs = 0, merged_exp = 0;
  int64_t bins = 0;
  for (const auto& [bin, p] : expected) {
    const double e = p * n;
    const double o = counts.count(bin) ? static_cast<double>(counts.at(bin)) : 0.0;
    if (e < 5) {
      merged_obs += o, merged_exp += e;
      continue;
    }
    chi += (o - e) * (o - e) / e;
    ++bins;
  }
  if (merged_exp > 0) chi += (merged_obs - merged_exp) * (merged_obs - merged_exp) / merged_exp, ++bins;
  for (const auto& [bin, c] : counts)
    if (!expected.count(bin) && c > 0) return 1e9;  // a token the target can never produce
  const double k = std::max<int64_t>(bins - 1, 1);
  return (std::cbrt(chi / k) - (1 - 2 / (9 * k))) / std::sqrt(2 / (9 * k));
}

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> out;
  for (double x : p) out.push_back(x > 0 ? static_cast<float>(std::log(x)) : -1e30f);
  return out;
}

std::vector<double> random_dist(int64_t v, Philox& rng, double zero_share = 0.0) {
  std::vector<double> p(v);
  double s = 0;
  for (auto& x : p) s += x = rng.uniform() < zero_share ? 0.0 : std::exp(1.5 * rng.normal());
  for (auto& x : p) x /= s;
  return p;
}

constexpr int64_t V = 5;

// Two-token target p(x1) p(x2|x1) and draft q(x1) q(x2|x1) on a vocabulary of 5, with zeros on both sides.
struct TwoTokenWorld {
  std::vector<double> p1, q1;
  std::vector<std::vector<double>> p2, q2;  // [x1]
  explicit TwoTokenWorld(uint64_t seed) {
    Philox rng(seed);
    p1 = random_dist(V, rng, 0.2), q1 = random_dist(V, rng, 0.2);
    for (int64_t x = 0; x < V; ++x) p2.push_back(random_dist(V, rng, 0.2)), q2.push_back(random_dist(V, rng, 0.2));
  }
  std::map<int64_t, double> joint() const {
    std::map<int64_t, double> e;
    for (int64_t a = 0; a < V; ++a)
      for (int64_t b = 0; b < V; ++b)
        if (p1[a] * p2[a][b] > 0) e[a * V + b] = p1[a] * p2[a][b];
    return e;
  }
};

// One speculative step with γ = 2 from the root, then (if it emitted one token only) the target's own next draw.
template <typename Rule>
int64_t two_tokens(const TwoTokenWorld& w, Philox& rng, Rule rule) {
  const SamplingConfig s{1.0, 0, 1.0, 0};
  const int32_t d1 = sample_from(w.q1, rng.uniform());
  const int32_t d2 = sample_from(w.q2[d1], rng.uniform());
  std::vector<float> logits;
  for (const auto* row : {&w.p1, &w.p2[d1], &w.p1}) {  // the third row (after d2) is irrelevant for two tokens
    const auto lp = log_probs(*row);
    logits.insert(logits.end(), lp.begin(), lp.end());
  }
  const Acceptance a = rule({0, d1, d2}, logits.data(), std::vector<std::vector<double>>{w.q1, w.q2[d1]}, s, rng);
  std::vector<int32_t> out;
  const std::vector<int32_t> tokens{0, d1, d2};
  for (size_t i = 1; i < a.path.size(); ++i) out.push_back(tokens[a.path[i]]);
  out.push_back(a.next_token);
  if (out.size() < 2) out.push_back(sample_from(w.p2[out[0]], rng.uniform()));
  return out[0] * V + out[1];
}

TEST(SpeculativeSampling, ChainRejectionPreservesTheJointDistribution) {
  constexpr int64_t kDraws = 60000;
  for (uint64_t seed : {1, 2}) {
    const TwoTokenWorld w(seed);
    Philox rng(seed * 77);
    std::map<int64_t, int64_t> counts, wrong;
    auto exact = [](const std::vector<int32_t>& t, const float* l, const std::vector<std::vector<double>>& q,
                    const SamplingConfig& s, Philox& r) { return accept_chain_rejection(t, l, V, q, s, r); };
    for (int64_t i = 0; i < kDraws; ++i) ++counts[two_tokens(w, rng, exact)];
    // Negative control: accepting every draft token samples the draft's distribution, not the target's.
    for (int64_t i = 0; i < kDraws; ++i) {
      const int32_t d1 = sample_from(w.q1, rng.uniform());
      ++wrong[d1 * V + sample_from(w.q2[d1], rng.uniform())];
    }
    EXPECT_LT(chi_square_z(counts, w.joint(), kDraws), 4.0) << "seed " << seed;
    EXPECT_GT(chi_square_z(wrong, w.joint(), kDraws), 4.0) << "the test cannot tell q from p (seed " << seed << ")";
  }
}

TEST(SpeculativeSampling, WarpedTargetIsPreserved) {
  // Temperature, top-k and top-p apply to the target: rejection against the warped p keeps it exactly.
  Philox rng(9);
  const std::vector<double> base = random_dist(8, rng);
  std::vector<float> logits = log_probs(base);
  const SamplingConfig s{0.7, 5, 0.9, 0};
  const std::vector<double> p = sampling_distribution(logits.data(), 8, s);
  const std::vector<double> q = random_dist(8, rng);
  constexpr int64_t kDraws = 40000;
  std::map<int64_t, int64_t> counts;
  std::vector<float> rows = logits;
  rows.insert(rows.end(), logits.begin(), logits.end());
  for (int64_t i = 0; i < kDraws; ++i) {
    const int32_t d = sample_from(q, rng.uniform());
    const Acceptance a = accept_chain_rejection({3, d}, rows.data(), 8, {q}, s, rng);
    ++counts[a.path.size() > 1 ? d : a.next_token];
  }
  std::map<int64_t, double> e;
  for (int64_t x = 0; x < 8; ++x)
    if (p[x] > 0) e[x] = p[x];
  EXPECT_LT(chi_square_z(counts, e, kDraws), 4.0);
}

TEST(SpeculativeSampling, TreeRuleWithPointMassCandidatesPreservesTheJointDistribution) {
  const TwoTokenWorld w(5);
  // Root with children tokens 3, 0, 4 (the heads' top-3), child "3" with children 1, 2; child "0" with child 0.
  const std::vector<int32_t> tokens{9, 3, 0, 4, 1, 2, 0};
  const std::vector<int32_t> parent{-1, 0, 0, 0, 1, 1, 2};
  std::vector<float> logits;
  for (int32_t n = 0; n < 7; ++n) {
    const auto lp = log_probs(n == 0 ? w.p1 : w.p2[tokens[n]]);  // rows beyond depth 1 are irrelevant here
    logits.insert(logits.end(), lp.begin(), lp.end());
  }
  const SamplingConfig s{1.0, 0, 1.0, 0};
  constexpr int64_t kDraws = 60000;
  Philox rng(55);
  std::map<int64_t, int64_t> counts, wrong;
  for (int64_t i = 0; i < kDraws; ++i) {
    const Acceptance a = accept_sampled_tree(tokens, parent, logits.data(), V, s, rng);
    std::vector<int32_t> out;
    for (size_t j = 1; j < a.path.size(); ++j) out.push_back(tokens[a.path[j]]);
    out.push_back(a.next_token);
    if (out.size() < 2) out.push_back(sample_from(w.p2[out[0]], rng.uniform()));
    ++counts[out[0] * V + out[1]];
    // Negative control: "accept the top candidate whenever the target gives it any mass".
    const int32_t x1 = w.p1[3] > 0 && rng.uniform() < 0.9 ? 3 : sample_from(w.p1, rng.uniform());
    ++wrong[x1 * V + sample_from(w.p2[x1], rng.uniform())];
  }
  EXPECT_LT(chi_square_z(counts, w.joint(), kDraws), 4.0);
  EXPECT_GT(chi_square_z(wrong, w.joint(), kDraws), 4.0);
}

// ---- end to end on a tiny model: the first two sampled tokens ----

std::map<int64_t, double> exact_two_tokens(const LlamaModel& m, const std::vector<int32_t>& prompt,
                                           const SamplingConfig& s) {
  const int64_t v = m.config().vocab_size;
  std::map<int64_t, double> e;
  DecodeState st = m.new_decode_state(1, 64);
  const Tensor l1 = m.decode(st, Tensor::from_vector(prompt, {1, static_cast<int64_t>(prompt.size())}), true);
  const auto p1 = sampling_distribution(l1.contiguous().data<float>(), v, s);
  for (int32_t a = 0; a < v; ++a) {
    if (p1[a] <= 0) continue;
    DecodeState c = st.clone();
    const Tensor l2 = m.decode(c, Tensor::from_vector(std::vector<int32_t>{a}, {1, 1}), true);
    const auto p2 = sampling_distribution(l2.contiguous().data<float>(), v, s);
    for (int32_t b = 0; b < v; ++b)
      if (p2[b] > 0) e[a * v + b] = p1[a] * p2[b];
  }
  return e;
}

TEST(SpeculativeSampling, EndToEndHeadsAndDraftMatchTheTarget) {
  constexpr int64_t kVocab = 8, kDraws = 4000;  // the rules themselves get 40k+ draws above
  const LlamaModel m = testing::speculative_tiny_model("aug", 41, kVocab);
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel draft = make_draft_model(m, 1, o, true);
  DraftHeadsConfig hc;
  hc.count = 2;
  const DraftHeads heads = DraftHeads::init_from(m, hc, false);
  const std::vector<int32_t> prompt{1, 4, 2, 7, 7, 0, 3};
  const SamplingConfig s{4.0, 6, 1.0, 0};  // the tiny model is peaked: a high temperature spreads p
  const auto expected = exact_two_tokens(m, prompt, s);
  const Speculator by_heads(m, heads, default_tree(2, 8));
  const Speculator by_draft(m, draft, 3);
  DecodeCost free_verification;  // `--tree auto` with verification free: trees grown to 8 nodes from the heads' probs
  free_verification.nodes = {1, 8};
  free_verification.verify_ms = {1.0, 1.0};
  const Speculator by_dynamic_tree(m, heads, free_verification, 8);
  // A feature draft (the target's last layer, untrained) over a reduced vocabulary that lacks some tokens.
  const FeatureDraft eagle = FeatureDraft::init_from(m, {0, 2, 3, 5, 6}, false);
  const Speculator by_eagle(m, eagle, free_verification, {.max_nodes = 8, .depth = 2, .expand = 2, .top_k = 3});
  for (const Speculator* spec : {&by_heads, &by_draft, &by_dynamic_tree, &by_eagle}) {
    GenerationConfig cfg;
    cfg.max_new_tokens = 2;
    cfg.sampling = s;
    // One batch of kDraws copies of the prompt: every sequence draws from its own Philox stream.
    const auto results = spec->generate(std::vector<std::vector<int32_t>>(kDraws, prompt), cfg);
    std::map<int64_t, int64_t> counts;
    for (const auto& r : results) {
      ASSERT_EQ(r.tokens.size(), 2u);
      ++counts[r.tokens[0] * kVocab + r.tokens[1]];
    }
    EXPECT_LT(chi_square_z(counts, expected, kDraws), 4.0) << spec->mode() << " " << spec->describe().dump();
  }
}

}  // namespace
}  // namespace linspec
