// Baseline linear attentions (attention/baselines/baseline_attention.h), table-driven over every preset:
//   parallel == naive quadratic reference (double, explicit T×T, tests/unit/baseline_attention_reference.h);
//   recurrent decode == parallel at every position through ≥ 3 chunks plus a partial one (f64 and f32);
//   gradient checks (f64 central differences) for q, k, v and every learnable parameter;
//   tree verification == sequential decode == parallel, for several prefix lengths and tree shapes;
//   advance by an accepted path, then continue == parallel over prefix + path + continuation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "attention/baselines/baseline_attention.h"
#include "core/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/unit/baseline_attention_reference.h"

namespace linspec {
namespace {
using testing::random_normal;

struct Case {
  std::string name;
  BaselineAttentionConfig cfg;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Small options so a few dozen tokens span several chunks / groups / windows.
std::vector<Case> cases() {
  std::vector<Case> out;
  for (BaselinePreset p : all_baseline_presets()) {
    BaselineAttentionConfig c;
    c.preset = p;
    c.chunk = 8, c.group = 8, c.window = 6, c.features = 12, c.max_len = 64, c.seed = 11;
    out.push_back({baseline_preset_name(p), c});
  }
  BaselineAttentionConfig tn;
  tn.preset = BaselinePreset::Transnormer, tn.chunk = 8, tn.norm_weight = true;
  out.push_back({"transnormer_weighted", tn});
  BaselineAttentionConfig wide;  // window wider than a chunk
  wide.preset = BaselinePreset::Window, wide.chunk = 5, wide.window = 11;
  out.push_back({"window_wide", wide});
  BaselineAttentionConfig tiny;  // one-token chunks: every key comes from the prefix state
  tiny.preset = BaselinePreset::Elu, tiny.chunk = 1;
  out.push_back({"elu_chunk1", tiny});
  return out;
}

// The block length the parallel form is chunked by (yoso: its group).
int64_t block_of(const BaselineAttentionConfig& c) { return c.preset == BaselinePreset::Yoso ? c.group : c.chunk; }

// Preset parameters moved away from their init so every parameter matters.
BaselineAttentionParams random_params(const BaselineAttentionConfig& c, int64_t Hq, int64_t d, DType dtype, uint64_t seed) {
  BaselineAttentionParams p = init_baseline_attention_params(c, Hq, d, DType::F64);
  Philox rng(seed);
  auto perturb = [&](Tensor& t, double scale) {
    if (!t.defined()) return;
    double* x = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) x[i] += scale * rng.normal();
  };
  perturb(p.feature_w, 0.3);
  perturb(p.feature_b, 0.3);
  perturb(p.mix_logit, 1.0);
  perturb(p.norm_weight, 0.3);
  for (Tensor* t : {&p.omega, &p.feature_w, &p.feature_b, &p.mix_logit, &p.norm_weight})
    if (t->defined()) *t = t->detach().to(dtype);
  return p;
}

struct Qkv {
  Tensor q, k, v;
};
Qkv random_qkv(int64_t B, int64_t Hq, int64_t Hkv, int64_t T, int64_t d, DType dtype, uint64_t seed) {
  Philox rng(seed);
  return {random_normal({B, Hq, T, d}, dtype, rng), random_normal({B, Hkv, T, d}, dtype, rng),
          random_normal({B, Hkv, T, d}, dtype, rng)};
}

// max |a − b| / max(1, max |b|)
double rel_err(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::fabs(x[i] - y[i]));
    scale = std::max(scale, std::fabs(y[i]));
  }
  return diff / scale;
}

Tensor rows(const Tensor& x, int64_t from, int64_t to) { return x.slice(2, from, to).contiguous(); }
Tensor cat(const Tensor& a, const Tensor& b) { return ops::concat({a, b}, 2); }

Tensor run_parallel(const BaselineAttentionConfig& c, const BaselineAttentionParams& p, const Qkv& x) {
  NoGradGuard ng;
  return baseline_attention(c, p, x.q, x.k, x.v);
}

// ---------------------------------------------------------------- parallel == reference
class BaselineAttentionPreset : public ::testing::TestWithParam<Case> {};

TEST_P(BaselineAttentionPreset, ParallelMatchesQuadraticReference) {
  struct Shape_ {
    int64_t B, Hq, Hkv, T, d;
  };
  const Case& tc = GetParam();
  for (const Shape_& s :
       {Shape_{2, 3, 1, 29, 6}, Shape_{1, 2, 2, 20, 5}, Shape_{2, 4, 2, 3 * block_of(tc.cfg) + 3, 4}}) {
    SCOPED_TRACE(tc.name + " Hq=" + std::to_string(s.Hq) + " Hkv=" + std::to_string(s.Hkv));
    const auto p = random_params(tc.cfg, s.Hq, s.d, DType::F64, 5);
    const Qkv x = random_qkv(s.B, s.Hq, s.Hkv, s.T, s.d, DType::F64, 6);
    const Tensor out = run_parallel(tc.cfg, p, x);
    const Tensor ref =
        Tensor::from_vector(testing::reference_attention(tc.cfg, testing::ref_inputs(p, x.q, x.k, x.v)), out.shape());
    EXPECT_LT(rel_err(out, ref), 1e-10);
    // f32 inputs agree with the f64 reference to fp32 rounding.
    const auto p32 = random_params(tc.cfg, s.Hq, s.d, DType::F32, 5);
    const Tensor out32 = run_parallel(tc.cfg, p32, {x.q.to(DType::F32), x.k.to(DType::F32), x.v.to(DType::F32)});
    EXPECT_LT(rel_err(out32, ref), 2e-5);
  }
}

TEST(BaselineAttention, DefaultOptionsMatchReference) {
  for (BaselinePreset preset : all_baseline_presets()) {
    BaselineAttentionConfig c;  // chunk, group and window 64
    c.preset = preset;
    SCOPED_TRACE(baseline_preset_name(preset));
    const auto p = random_params(c, 3, 8, DType::F64, 21);
    const Qkv x = random_qkv(1, 3, 1, 150, 8, DType::F64, 22);
    const Tensor out = run_parallel(c, p, x);
    const Tensor ref =
        Tensor::from_vector(testing::reference_attention(c, testing::ref_inputs(p, x.q, x.k, x.v)), out.shape());
    EXPECT_LT(rel_err(out, ref), 1e-10);
  }
}

TEST(BaselineAttention, InitialParametersFollowTheMethod) {
  BaselineAttentionConfig c;
  c.preset = BaselinePreset::Window;
  const auto p = init_baseline_attention_params(c, 2, 3);
  EXPECT_EQ(p.feature_w.to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(p.feature_b.to_vector<float>(), std::vector<float>(6, 0.f));
  EXPECT_NEAR(1 / (1 + std::exp(-p.mix_logit.to_vector<double>()[0])), 0.1, 1e-3);
  EXPECT_EQ(p.learnable().size(), 3u);
  EXPECT_TRUE(p.feature_w.requires_grad());
  c.preset = BaselinePreset::Elu;
  EXPECT_TRUE(init_baseline_attention_params(c, 2, 3).learnable().empty());
}

// ---------------------------------------------------------------- recurrent == parallel
void expect_decode_matches_parallel(const BaselineAttentionConfig& c, DType dtype, int64_t d, int64_t prefill,
                                    double tol) {
  const int64_t B = 2, Hq = 3, Hkv = 1, T = 3 * block_of(c) + std::max<int64_t>(c.window, 5) + 3;
  const auto p = random_params(c, Hq, d, dtype, 31);
  const Qkv x = random_qkv(B, Hq, Hkv, T, d, dtype, 32);
  const Tensor par = run_parallel(c, p, x);
  BaselineAttentionState st = baseline_attention_state(c, B, Hq, Hkv, d, dtype);
  baseline_attention_absorb(c, p, st, rows(x.k, 0, prefill), rows(x.v, 0, prefill));
  EXPECT_EQ(st.pos, prefill);
  for (int64_t t = prefill; t < T; ++t) {
    const Tensor o = baseline_attention_decode(c, p, st, rows(x.q, t, t + 1), rows(x.k, t, t + 1), rows(x.v, t, t + 1));
    const double err = rel_err(o, rows(par, t, t + 1));
    ASSERT_LT(err, tol) << "position " << t;
  }
  EXPECT_EQ(st.pos, T);
}

TEST_P(BaselineAttentionPreset, RecurrentMatchesParallelAtEveryPosition) {
  const Case& tc = GetParam();
  SCOPED_TRACE(tc.name);
  expect_decode_matches_parallel(tc.cfg, DType::F64, 6, 0, 1e-11);
  // Prefill by absorbing a block (crossing chunk and window boundaries), then decode.
  expect_decode_matches_parallel(tc.cfg, DType::F64, 6, block_of(tc.cfg) + 3, 1e-11);
}

TEST(BaselineAttention, RecurrentMatchesParallelInF32AtDefaultSizes) {
  for (BaselinePreset preset : all_baseline_presets()) {
    BaselineAttentionConfig c;
    c.preset = preset;
    SCOPED_TRACE(baseline_preset_name(preset));
    expect_decode_matches_parallel(c, DType::F32, 64, 70, 1e-5);
  }
}

TEST_P(BaselineAttentionPreset, StateSizeDoesNotGrowWithContext) {
  const Case& tc = GetParam();
  SCOPED_TRACE(tc.name);
  BaselineAttentionState st = baseline_attention_state(tc.cfg, 1, 2, 1, 4);
  const int64_t bytes = st.bytes();
  const auto p = random_params(tc.cfg, 2, 4, DType::F32, 1);
  const Qkv x = random_qkv(1, 2, 1, 100, 4, DType::F32, 2);
  baseline_attention_absorb(tc.cfg, p, st, x.k, x.v);
  EXPECT_EQ(st.bytes(), bytes);
}

// ---------------------------------------------------------------- gradients
TEST_P(BaselineAttentionPreset, GradientsMatchFiniteDifferences) {
  const Case& base = GetParam();
  BaselineAttentionConfig c = base.cfg;
  c.chunk = std::min<int64_t>(c.chunk, 4), c.group = 4, c.window = std::min<int64_t>(c.window, 3);
  c.features = 6;
  SCOPED_TRACE(base.name);
  const int64_t B = 2, Hq = 2, Hkv = 1, T = 11, d = 4;
  const BaselineAttentionParams init = random_params(c, Hq, d, DType::F64, 41);
  // Inputs: q, k, v, then the learnable parameters in learnable() order.
  const auto learn = init.learnable();
  std::vector<Shape> shapes = {{B, Hq, T, d}, {B, Hkv, T, d}, {B, Hkv, T, d}};
  for (const auto& [name, t] : learn) shapes.push_back(t.shape());
  testing::GradCase gc;
  gc.name = base.name;
  gc.input_shapes = shapes;
  gc.make_input = [&](size_t i, const Shape& shape, Philox& rng) {
    if (i < 3) return random_normal(shape, DType::F64, rng);
    return learn[i - 3].second.detach().clone();
  };
  gc.fn = [&](const std::vector<Tensor>& in) {
    BaselineAttentionParams p = init;
    for (size_t j = 0; j < learn.size(); ++j) {
      const std::string& name = learn[j].first;
      Tensor& dst = name == "feature_w"   ? p.feature_w
                    : name == "feature_b" ? p.feature_b
                    : name == "mix_logit" ? p.mix_logit
                                          : p.norm_weight;
      dst = in[3 + j];
    }
    return baseline_attention(c, p, in[0], in[1], in[2]);
  };
  const auto r = testing::gradcheck(gc);
  EXPECT_LT(r.max_rel_err, 1e-6) << r.worst;
}

// ---------------------------------------------------------------- trees
// A random tree of n nodes whose first `depth` nodes form a chain (so the depth is reached), the rest attached to
// random nodes above the depth limit (branching).
std::vector<int32_t> random_tree(int64_t n, int64_t depth, Philox& rng) {
  std::vector<int32_t> parent, dep;
  for (int64_t i = 0; i < n; ++i) {
    int32_t pa = -1;
    if (i < depth) {
      pa = static_cast<int32_t>(i) - 1;
    } else {
      std::vector<int32_t> ok = {-1};
      for (int32_t j = 0; j < i; ++j)
        if (dep[j] + 1 < depth) ok.push_back(j);
      pa = ok[rng.below(ok.size())];
    }
    parent.push_back(pa);
    dep.push_back(pa < 0 ? 0 : dep[pa] + 1);
  }
  return parent;
}

std::vector<int32_t> path_to(const std::vector<int32_t>& parent, int32_t node) {
  std::vector<int32_t> path;
  for (int32_t n = node; n >= 0; n = parent[n]) path.push_back(n);
  std::reverse(path.begin(), path.end());
  return path;
}

Tensor pick(const Tensor& x, const std::vector<int32_t>& nodes) {
  std::vector<Tensor> parts;
  for (int32_t n : nodes) parts.push_back(rows(x, n, n + 1));
  return parts.empty() ? rows(x, 0, 0) : ops::concat(parts, 2);
}

std::vector<std::vector<int32_t>> test_trees(const BaselineAttentionConfig& c, Philox& rng) {
  std::vector<std::vector<int32_t>> trees = {
      {-1},                         // depth 1
      {-1, 0, 1, 2, 3},             // chain, depth 5
      {-1, -1, -1, 0, 1, 2, 0, 3},  // three roots, branching, depth 3
      random_tree(12, 4, rng),      //
      random_tree(16, 5, rng),      //
  };
  std::vector<int32_t> deep;  // deeper than the window and a block: path keys leave the window inside the tree
  for (int32_t i = 0; i < std::max<int64_t>(c.window, block_of(c)) + 4; ++i) deep.push_back(i - 1);
  deep.push_back(2);
  trees.push_back(deep);
  return trees;
}

std::vector<int64_t> prefix_lengths(const BaselineAttentionConfig& c) {
  const int64_t G = block_of(c), W = c.window;
  std::vector<int64_t> P = {0, 1, 2, 3, G - 3, G - 2, G - 1, G, 2 * G + 1, W - 1, W, W + 1};
  std::erase_if(P, [](int64_t p) { return p < 0; });
  std::sort(P.begin(), P.end());
  P.erase(std::unique(P.begin(), P.end()), P.end());
  return P;
}

TEST_P(BaselineAttentionPreset, TreeMatchesSequentialDecodeAndParallel) {
  Philox rng(99);
  const Case& tc = GetParam();
  SCOPED_TRACE(tc.name);
  const BaselineAttentionConfig& c = tc.cfg;
  const int64_t B = 2, Hq = 2, Hkv = 1, d = 5;
  const auto p = random_params(c, Hq, d, DType::F64, 51);
  for (int64_t P : prefix_lengths(c))
    for (const auto& parent : test_trees(c, rng)) {
      SCOPED_TRACE("P=" + std::to_string(P) + " nodes=" + std::to_string(parent.size()));
      const int64_t N = static_cast<int64_t>(parent.size());
      const Qkv pre = random_qkv(B, Hq, Hkv, P, d, DType::F64, 1000 + P);
      const Qkv node = random_qkv(B, Hq, Hkv, N, d, DType::F64, 2000 + P + N);
      BaselineAttentionState st = baseline_attention_state(c, B, Hq, Hkv, d, DType::F64);
      baseline_attention_absorb(c, p, st, pre.k, pre.v);
      const BaselineAttentionState before = st.clone();
      const Tensor out = baseline_attention_tree(c, p, st, parent, node.q, node.k, node.v);
      EXPECT_EQ(st.pos, P);
      // Every node lies on the path to some leaf: check all nodes of each leaf's path.
      std::vector<bool> is_parent(N, false);
      for (int32_t pa : parent)
        if (pa >= 0) is_parent[pa] = true;
      for (int32_t leaf = 0; leaf < N; ++leaf) {
        if (is_parent[leaf]) continue;
        const auto path = path_to(parent, leaf);
        // Sequential: decode the path token by token from the committed state.
        BaselineAttentionState seq = st.clone();
        // Parallel over prefix + path.
        const Qkv full{cat(pre.q, pick(node.q, path)), cat(pre.k, pick(node.k, path)), cat(pre.v, pick(node.v, path))};
        const Tensor par = run_parallel(c, p, full);
        for (size_t j = 0; j < path.size(); ++j) {
          const int32_t n = path[j];
          const Tensor o = baseline_attention_decode(c, p, seq, rows(node.q, n, n + 1), rows(node.k, n, n + 1),
                                                   rows(node.v, n, n + 1));
          const Tensor tree_o = rows(out, n, n + 1);
          ASSERT_LT(rel_err(tree_o, o), 1e-11) << "node " << n << " vs decode";
          const int64_t at = P + static_cast<int64_t>(j);
          ASSERT_LT(rel_err(tree_o, rows(par, at, at + 1)), 1e-11) << "node " << n << " vs parallel";
        }
      }
      // Verification leaves the committed state untouched.
      for (auto [a, b] : {std::pair{&st.S, &before.S}, {&st.z, &before.z}, {&st.buf_k, &before.buf_k}}) {
        if (a->defined()) {
          EXPECT_EQ(a->to_vector<double>(), b->to_vector<double>());
        }
      }
    }
}

TEST_P(BaselineAttentionPreset, AdvanceByAcceptedPathThenContinue) {
  Philox rng(7);
  const Case& tc = GetParam();
  SCOPED_TRACE(tc.name);
  const BaselineAttentionConfig& c = tc.cfg;
  const int64_t B = 1, Hq = 3, Hkv = 3, d = 4, after = 2 * block_of(c) + 3;
  const auto p = random_params(c, Hq, d, DType::F64, 61);
  for (int64_t P : {int64_t{0}, int64_t{2}, std::max<int64_t>(0, block_of(c) - 2), block_of(c) + 5}) {
    const auto parent = random_tree(14, 5, rng);
    const int64_t N = static_cast<int64_t>(parent.size());
    // Accept the path to the deepest node, a partial path, or nothing.
    for (int32_t target : {4, 2, -1}) {
      SCOPED_TRACE("P=" + std::to_string(P) + " accepted up to node " + std::to_string(target));
      const auto path = target < 0 ? std::vector<int32_t>{} : path_to(parent, target);
      const Qkv pre = random_qkv(B, Hq, Hkv, P, d, DType::F64, 3000 + P);
      const Qkv node = random_qkv(B, Hq, Hkv, N, d, DType::F64, 4000 + P);
      const Qkv cont = random_qkv(B, Hq, Hkv, after, d, DType::F64, 5000 + P);
      BaselineAttentionState st = baseline_attention_state(c, B, Hq, Hkv, d, DType::F64);
      baseline_attention_absorb(c, p, st, pre.k, pre.v);
      baseline_attention_tree(c, p, st, parent, node.q, node.k, node.v);
      baseline_attention_advance(c, p, st, parent, path, node.k, node.v);
      EXPECT_EQ(st.pos, P + static_cast<int64_t>(path.size()));
      const Qkv full{cat(cat(pre.q, pick(node.q, path)), cont.q), cat(cat(pre.k, pick(node.k, path)), cont.k),
                     cat(cat(pre.v, pick(node.v, path)), cont.v)};
      const Tensor par = run_parallel(c, p, full);
      for (int64_t t = 0; t < after; ++t) {
        const Tensor o =
            baseline_attention_decode(c, p, st, rows(cont.q, t, t + 1), rows(cont.k, t, t + 1), rows(cont.v, t, t + 1));
        const int64_t at = st.pos - 1;
        ASSERT_LT(rel_err(o, rows(par, at, at + 1)), 1e-11) << "continuation token " << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllPresets, BaselineAttentionPreset, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// ---------------------------------------------------------------- performer features
TEST(BaselineAttention, PerformerFeaturesAreSeededOrthogonalBlocks) {
  const int64_t d = 8, m = 20;
  const auto w = performer_omega(m, d, 3, DType::F64).to_vector<double>();
  EXPECT_EQ(w, performer_omega(m, d, 3, DType::F64).to_vector<double>());
  EXPECT_NE(w, performer_omega(m, d, 4, DType::F64).to_vector<double>());
  auto dot = [&](int64_t i, int64_t j) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c) s += w[i * d + c] * w[j * d + c];
    return s;
  };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < i; ++j) {
      if (i / d == j / d) {
        EXPECT_NEAR(dot(i, j), 0.0, 1e-10) << i << "," << j;  // orthogonal within a block
      }
    }
  // With many features, φ(x)·φ(y) (unstabilised) estimates the softmax kernel exp(x'·y'), x' = d^{-1/4} x.
  const int64_t many = 8192;
  const auto big = performer_omega(many, d, 5, DType::F64).to_vector<double>();
  Philox rng(9);
  std::vector<double> x(d), y(d);
  for (int64_t i = 0; i < d; ++i) x[i] = 0.7 * rng.normal(), y[i] = 0.7 * rng.normal();
  const double c = std::pow(double(d), -0.25);
  double est = 0, xy = 0, xx = 0, yy = 0;
  for (int64_t i = 0; i < d; ++i) xy += c * c * x[i] * y[i], xx += c * c * x[i] * x[i], yy += c * c * y[i] * y[i];
  for (int64_t r = 0; r < many; ++r) {
    double ux = 0, uy = 0;
    for (int64_t i = 0; i < d; ++i) ux += big[r * d + i] * c * x[i], uy += big[r * d + i] * c * y[i];
    est += std::exp(ux - xx / 2) * std::exp(uy - yy / 2) / many;
  }
  EXPECT_NEAR(est / std::exp(xy), 1.0, 0.05);
}

// ---------------------------------------------------------------- bad input
TEST(BaselineAttention, BadInputIsReported) {
  EXPECT_THROW(parse_baseline_preset("softplus", "cfg.yaml: attention"), InputError);
  EXPECT_EQ(parse_baseline_preset("hedgehog"), BaselinePreset::Hedgehog);
  BaselineAttentionConfig c;
  EXPECT_THROW(set_baseline_attention_option(c, "chunk_size", "0"), InputError);
  EXPECT_THROW(set_baseline_attention_option(c, "window", "x"), InputError);
  EXPECT_THROW(set_baseline_attention_option(c, "colour", "1"), InputError);
  set_baseline_attention_option(c, "features", "32");
  EXPECT_EQ(c.features, 32);
  c.preset = BaselinePreset::Elu;
  const auto p = init_baseline_attention_params(c, 1, 4);
  const Qkv x = random_qkv(1, 1, 1, 3, 4, DType::F32, 1);
  BaselineAttentionState st = baseline_attention_state(c, 1, 1, 1, 4);
  EXPECT_THROW(baseline_attention_tree(c, p, st, {-1, 1, 0}, x.q, x.k, x.v), InputError);           // parent not earlier
  EXPECT_THROW(baseline_attention_tree(c, p, st, {-1, 0}, x.q, x.k, x.v), InputError);              // wrong count
  EXPECT_THROW(baseline_attention_advance(c, p, st, {-1, 0, 0}, {0, 2, 1}, x.k, x.v), InputError);  // not a chain
  EXPECT_THROW(baseline_attention_advance(c, p, st, {-1, 0, 0}, {1}, x.k, x.v), InputError);        // not from the root
}

}  // namespace
}  // namespace linspec
