// The seed's augmented linear attention: parallel vs a naive masked T×T reference, recurrent vs parallel, tree vs
// sequential, state advance by an accepted path, gradients, conv causality, and the zero-init equivalence with
// `local`. Table-driven over the presets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attention/aug/aug_attention.h"
#include "tests/support/gradcheck.h"

using namespace linspec;
using linspec::testing::random_normal;

namespace {

// A preset name, optionally with "/mean" for global_mean (the global term averaged instead of summed).
const std::vector<std::string> kPresets = {"local", "global", "local+global", "local+conv", "aug", "global/mean", "aug/mean"};

struct Sizes {
  int64_t B, Hq, Hkv, T, d;
};

struct Inputs {
  Tensor q, k, v, w, ll, lg;
};

AugConfig config(const std::string& param, int64_t G, int64_t C) {
  const size_t slash = param.find('/');
  AugConfig c = AugConfig::preset(param.substr(0, slash));
  c.global_mean = slash != std::string::npos && param.substr(slash + 1) == "mean";
  c.group_size = G;
  c.conv_taps = C;
  return c;
}

Inputs make_inputs(const Sizes& s, const AugConfig& c, DType dt, uint64_t seed) {
  Philox rng(seed);
  Inputs in;
  in.q = random_normal({s.B, s.Hq, s.T, s.d}, dt, rng);
  in.k = random_normal({s.B, s.Hkv, s.T, s.d}, dt, rng);
  in.v = random_normal({s.B, s.Hkv, s.T, s.d}, dt, rng);
  in.w = random_normal({s.Hq, c.conv_taps}, dt, rng, 0.5);
  in.ll = Tensor::scalar(0.9, dt);
  in.lg = Tensor::scalar(0.7, dt);
  return in;
}

// max |a − b| / max |b|: a normwise relative error that does not blow up on entries near zero.
double rel_err(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num = std::max(num, std::fabs(x[i] - y[i]));
    den = std::max(den, std::fabs(y[i]));
  }
  return den > 0 ? num / den : num;
}

// Naive reference in double: explicit masked T×T matrices per (batch, head), o = (λl·A_local + λg·A_global + W_conv) V;
// under global_mean row t of A_global is divided by the ⌊t/G⌋·G tokens it covers.
Tensor naive(const Inputs& in, const AugConfig& c) {
  const int64_t B = in.q.size(0), Hq = in.q.size(1), Hkv = in.k.size(1), T = in.q.size(2), d = in.q.size(3);
  const int64_t G = c.group_size, C = c.conv_taps;
  auto q = in.q.to_vector<double>(), k = in.k.to_vector<double>(), v = in.v.to_vector<double>();
  auto w = in.w.to_vector<double>();
  const double ll = in.ll.item(), lg = in.lg.item();
  auto normalize = [&](std::vector<double>& x) {
    for (size_t r = 0; r < x.size() / d; ++r) {
      double n2 = 0;
      for (int64_t j = 0; j < d; ++j) n2 += x[r * d + j] * x[r * d + j];
      for (int64_t j = 0; j < d; ++j) x[r * d + j] /= std::sqrt(n2 + c.eps);
    }
  };
  normalize(q);
  normalize(k);
  std::vector<double> out(B * Hq * T * d, 0.0), M(T * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kv = b * Hkv + h / (Hq / Hkv), qh = b * Hq + h;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < T; ++s) {
          double dot = 0;
          for (int64_t j = 0; j < d; ++j) dot += q[(qh * T + t) * d + j] * k[(kv * T + s) * d + j];
          double m = 0;
          if (c.use_local && s <= t && s / G == t / G) m += ll * std::pow(std::max(dot, 0.0), 2);
          if (c.use_global && s / G < t / G) m += lg * dot / (c.global_mean ? double(t / G * G) : 1.0);
          if (c.use_conv && t - s >= 0 && t - s < C) m += w[h * C + (t - s)];
          M[t * T + s] = m;
        }
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < T; ++s)
          for (int64_t j = 0; j < d; ++j) out[(qh * T + t) * d + j] += M[t * T + s] * v[(kv * T + s) * d + j];
    }
  return Tensor::from_vector(out, {B, Hq, T, d});
}

Tensor parallel(const Inputs& in, const AugConfig& c) {
  return ops::aug_attention(in.q, in.k, in.v, in.w, in.ll, in.lg, c);
}

// Token t of x [B, H, T, d] as [B, H, 1, d].
Tensor token(const Tensor& x, int64_t t) { return x.slice(2, t, t + 1); }

// Concatenation of [B, H, n_i, d] tensors along the time axis (plain copies, no autograd).
Tensor cat_time(const std::vector<Tensor>& xs) {
  const int64_t B = xs[0].size(0), H = xs[0].size(1), d = xs[0].size(3);
  int64_t T = 0;
  for (const Tensor& x : xs) T += x.size(2);
  std::vector<double> out;
  out.reserve(B * H * T * d);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (const Tensor& x : xs) {
      const auto v = x.to_vector<double>();
      const int64_t n = x.size(2) * d;
      out.insert(out.end(), v.begin() + bh * n, v.begin() + (bh + 1) * n);
    }
  return Tensor::from_vector(out, {B, H, T, d}).to(xs[0].dtype());
}

// x [B, H, N, d] rows `idx` -> [B, H, |idx|, d]
Tensor gather(const Tensor& x, const std::vector<int32_t>& idx) {
  std::vector<Tensor> parts;
  for (int32_t i : idx) parts.push_back(token(x, i));
  return cat_time(parts);
}

// Runs the decode step over all tokens; returns the outputs stacked as [B, Hq, T, d].
Tensor recurrent(AugState& st, const Inputs& in) {
  if (in.q.size(2) == 0) return Tensor::zeros(in.q.shape(), in.q.dtype());
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < in.q.size(2); ++t)
    outs.push_back(aug_step(st, token(in.q, t), token(in.k, t), token(in.v, t), in.w, in.ll, in.lg));
  return cat_time(outs);
}

// ---------------------------------------------------------------------------------------------------------------
class AugPreset : public ::testing::TestWithParam<std::string> {};

TEST_P(AugPreset, ParallelMatchesNaiveReference) {
  for (Sizes s : {Sizes{2, 3, 1, 0, 4}, Sizes{2, 2, 2, 0, 4}})
    for (int64_t T : {1, 7, 8, 29}) {  // 1, G−1, G, 3G+5 with G = 8
      s.T = T;
      const AugConfig c = config(GetParam(), 8, 5);
      Inputs in = make_inputs(s, c, DType::F64, 11 + T);
      Tensor ref = naive(in, c);
      EXPECT_LT(rel_err(parallel(in, c), ref), 1e-12) << "T=" << T << " Hkv=" << s.Hkv;
      Inputs in32{in.q.to(DType::F32), in.k.to(DType::F32), in.v.to(DType::F32), in.w.to(DType::F32),
                  in.ll.to(DType::F32), in.lg.to(DType::F32)};
      EXPECT_LT(rel_err(parallel(in32, c), ref), 1e-5) << "f32, T=" << T << " Hkv=" << s.Hkv;
    }
}

TEST_P(AugPreset, ParallelMatchesNaiveAtDefaultGroupAndTaps) {
  const AugConfig c = config(GetParam(), 64, 32);
  Inputs in = make_inputs({1, 3, 1, 200, 16}, c, DType::F64, 5);
  Tensor ref = naive(in, c);
  EXPECT_LT(rel_err(parallel(in, c), ref), 1e-12);
  Inputs in32{in.q.to(DType::F32), in.k.to(DType::F32), in.v.to(DType::F32), in.w.to(DType::F32),
              in.ll.to(DType::F32), in.lg.to(DType::F32)};
  EXPECT_LT(rel_err(parallel(in32, c), ref), 1e-5);
}

TEST_P(AugPreset, RecurrentMatchesParallelAtEveryPosition) {
  struct Case {
    int64_t G, C, T;
    DType dt;
    double tol;
  };
  // ≥ 3 groups plus a partial one; C > G exercises a conv ring longer than the group buffer; C = 1 has no ring and
  // G = 1 makes every token its own group.
  for (const Case& k : {Case{8, 5, 29, DType::F64, 1e-12}, Case{4, 11, 19, DType::F64, 1e-12},
                        Case{4, 1, 13, DType::F64, 1e-12}, Case{1, 3, 7, DType::F64, 1e-12},
                        Case{64, 32, 200, DType::F32, 1e-5}})
    for (int64_t Hkv : {1, 3}) {
      const AugConfig c = config(GetParam(), k.G, k.C);
      Inputs in = make_inputs({2, 3, Hkv, k.T, 8}, c, k.dt, 21);
      Tensor par = parallel(in, c);
      AugState st(c, 2, 3, Hkv, 8, k.dt);
      Tensor rec = recurrent(st, in);
      EXPECT_EQ(st.pos, k.T);
      for (int64_t t = 0; t < k.T; ++t)
        ASSERT_LT(rel_err(token(rec, t), token(par, t)), k.tol)
            << "position " << t << " G=" << k.G << " C=" << k.C << " Hkv=" << Hkv;
    }
}

TEST_P(AugPreset, GradientsMatchCentralDifferences) {
  for (bool zeros : {false, true}) {
    // At a zero row q̂·k̂ = 0 sits on relu²'s kink and q̂ moves by h/sqrt(eps) per step h, so central differences
    // carry an O(h/eps) error there: check zero rows with a larger eps and a smaller step.
    AugConfig c = config(GetParam(), 4, 3);
    if (zeros) c.eps = 1e-2;
    linspec::testing::GradCase gc;
    gc.name = GetParam();
    gc.input_shapes = {{2, 3, 11, 4}, {2, 1, 11, 4}, {2, 1, 11, 4}, {3, 3}, {}, {}};
    gc.fn = [&](const std::vector<Tensor>& x) { return ops::aug_attention(x[0], x[1], x[2], x[3], x[4], x[5], c); };
    gc.make_input = [&](size_t i, const Shape& shape, Philox& rng) {
      Tensor t = random_normal(shape, DType::F64, rng);
      if (zeros && i <= 1) {  // zero q / k rows (token 0 and 5 of every head) must give finite outputs and gradients
        const int64_t T = shape[2], d = shape[3];
        for (int64_t r = 0; r < t.numel() / d; ++r)
          if (r % T == 0 || r % T == 5) std::fill_n(t.data<double>() + r * d, d, 0.0);
      }
      return t;
    };
    auto r = linspec::testing::gradcheck(gc, zeros ? 1e-7 : 1e-6);
    EXPECT_LT(r.max_rel_err, 1e-5) << (zeros ? "with zero rows: " : "") << r.worst;
    EXPECT_TRUE(std::isfinite(r.max_abs_err));
  }
}

TEST_P(AugPreset, ZeroVectorsGiveFiniteOutputsAndGradients) {
  const AugConfig c = config(GetParam(), 4, 3);
  Inputs in = make_inputs({1, 1, 1, 9, 4}, c, DType::F32, 3);
  in.q.zero();
  in.k.zero();
  Tensor q = in.q.clone().set_requires_grad(), k = in.k.clone().set_requires_grad();
  Tape tape;
  TapeScope scope(tape);
  Tensor o = ops::aug_attention(q, k, in.v, in.w, in.ll, in.lg, c);
  backward(ops::sum(o));
  for (const Tensor& t : {o, q.grad(), k.grad()})
    for (float x : t.to_vector<float>()) ASSERT_TRUE(std::isfinite(x));
}

// Builds a random tree of N nodes with depth ≤ max_depth (parents precede children).
std::vector<int32_t> random_tree(int N, int max_depth, Philox& rng) {
  std::vector<int32_t> parent(N), depth(N);
  for (int i = 0; i < N; ++i) {
    std::vector<int32_t> options = {-1};
    for (int j = 0; j < i; ++j)
      if (depth[j] < max_depth) options.push_back(j), options.push_back(j);  // favour depth
    parent[i] = options[rng.below(options.size())];
    depth[i] = parent[i] < 0 ? 0 : depth[parent[i]] + 1;
  }
  return parent;
}

std::vector<int32_t> path_to(const std::vector<int32_t>& parent, int32_t node) {
  std::vector<int32_t> p;
  for (int32_t n = node; n >= 0; n = parent[n]) p.push_back(n);
  std::reverse(p.begin(), p.end());
  return p;
}

struct TreeCase {
  int64_t G, C, P;
  std::vector<int32_t> parent;  // empty: random
};

std::vector<TreeCase> tree_cases() {
  std::vector<TreeCase> cases;
  for (int64_t r : {0, 5, 6, 7}) cases.push_back({8, 5, 16 + r, {}});  // P mod G ∈ {0, G−3, G−2, G−1}
  for (int64_t P : {0, 1, 3}) cases.push_back({8, 5, P, {}});         // P < C − 1
  cases.push_back({4, 6, 2, {-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 3, -1}});  // a chain crossing 3 boundaries
  cases.push_back({64, 32, 62, {}});                                  // default G, C, near a boundary
  return cases;
}

TEST_P(AugPreset, TreeMatchesSequential) {
  const Sizes s{2, 3, 1, 0, 4};
  Philox rng(99);
  for (const TreeCase& tc : tree_cases()) {
    const AugConfig c = config(GetParam(), tc.G, tc.C);
    std::vector<int32_t> parent = tc.parent.empty() ? random_tree(24, 4, rng) : tc.parent;  // depths 0..4 (paths 1–5)
    const int64_t N = static_cast<int64_t>(parent.size());
    Inputs prefix = make_inputs({s.B, s.Hq, s.Hkv, tc.P, s.d}, c, DType::F64, 7 + tc.P);
    Inputs nodes = make_inputs({s.B, s.Hq, s.Hkv, N, s.d}, c, DType::F64, 8 + tc.P);
    nodes.w = prefix.w;
    AugState st(c, s.B, s.Hq, s.Hkv, s.d, DType::F64);
    recurrent(st, prefix);
    Tensor tree = aug_tree(st, nodes.q, nodes.k, nodes.v, parent, nodes.w, nodes.ll, nodes.lg);
    EXPECT_EQ(st.pos, tc.P);  // verification leaves the state alone
    for (int32_t i = 0; i < N; ++i) {
      // Reference: the parallel form over prefix + root-to-node path, last row.
      const std::vector<int32_t> path = path_to(parent, i);
      Inputs seq = prefix;
      seq.q = cat_time({prefix.q, gather(nodes.q, path)});
      seq.k = cat_time({prefix.k, gather(nodes.k, path)});
      seq.v = cat_time({prefix.v, gather(nodes.v, path)});
      Tensor ref = token(parallel(seq, c), tc.P + static_cast<int64_t>(path.size()) - 1);
      ASSERT_LT(rel_err(token(tree, i), ref), 1e-12) << "P=" << tc.P << " G=" << tc.G << " node " << i << " depth "
                                                     << path.size() - 1;
    }
  }
}

TEST_P(AugPreset, AdvanceByAcceptedPathThenContinueMatchesSequential) {
  const Sizes s{1, 3, 1, 0, 4};
  Philox rng(5);
  for (int64_t P : {3, 13, 15}) {
    const AugConfig c = config(GetParam(), 8, 5);
    std::vector<int32_t> parent = random_tree(16, 4, rng);
    std::vector<int32_t> depth = tree_depths(parent);
    const int32_t leaf = static_cast<int32_t>(std::max_element(depth.begin(), depth.end()) - depth.begin());
    const std::vector<int32_t> accepted = path_to(parent, leaf);
    Inputs prefix = make_inputs({s.B, s.Hq, s.Hkv, P, s.d}, c, DType::F64, 30 + P);
    Inputs nodes = make_inputs({s.B, s.Hq, s.Hkv, 16, s.d}, c, DType::F64, 31 + P);
    Inputs more = make_inputs({s.B, s.Hq, s.Hkv, 12, s.d}, c, DType::F64, 32 + P);
    nodes.w = more.w = prefix.w;

    AugState spec(c, s.B, s.Hq, s.Hkv, s.d, DType::F64);
    recurrent(spec, prefix);
    aug_tree(spec, nodes.q, nodes.k, nodes.v, parent, nodes.w, nodes.ll, nodes.lg);
    aug_advance(spec, nodes.k, nodes.v, parent, accepted);
    Tensor cont = recurrent(spec, more);

    AugState seq(c, s.B, s.Hq, s.Hkv, s.d, DType::F64);
    recurrent(seq, prefix);
    Inputs path{gather(nodes.q, accepted), gather(nodes.k, accepted), gather(nodes.v, accepted), nodes.w, nodes.ll,
                nodes.lg};
    recurrent(seq, path);
    Tensor ref = recurrent(seq, more);
    EXPECT_EQ(spec.pos, seq.pos);
    EXPECT_LT(rel_err(cont, ref), 1e-12) << "P=" << P;
    if (spec.S.defined()) {
      EXPECT_LT(rel_err(spec.S, seq.S), 1e-12);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, AugPreset, ::testing::ValuesIn(kPresets),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '+', '_');
                           std::replace(n.begin(), n.end(), '/', '_');
                           return n;
                         });

// ---------------------------------------------------------------------------------------------------------------
TEST(AugAttention, ConvIsCausalWithinItsTaps) {
  AugConfig c = config("aug", 8, 5);
  c.use_local = c.use_global = false;  // the conv-only part
  Inputs in = make_inputs({1, 3, 1, 30, 4}, c, DType::F64, 17);
  Tensor base = parallel(in, c);
  Tensor branch = ops::aug_attention_branches(in.q, in.k, in.v, in.w, config("aug", 8, 5)).conv;
  EXPECT_LT(rel_err(branch, base), 1e-15);
  for (int64_t s : {0, 11, 27}) {
    Inputs moved = in;
    moved.v = in.v.clone();
    for (int64_t j = 0; j < 4; ++j) moved.v.data<double>()[s * 4 + j] += 1.0;
    Tensor out = parallel(moved, c);
    for (int64_t t = 0; t < 30; ++t) {
      const double diff = rel_err(token(out, t), token(base, t));
      if (t >= s && t <= s + 4) EXPECT_GT(diff, 1e-6) << "s=" << s << " t=" << t;
      else EXPECT_EQ(diff, 0.0) << "s=" << s << " t=" << t;
    }
  }
}

TEST(AugAttention, ZeroInitAugEqualsLocal) {
  const AugConfig aug = config("aug", 8, 5), local = config("local", 8, 5);
  Inputs in = make_inputs({2, 3, 1, 29, 4}, aug, DType::F32, 4);
  in.w.zero();
  in.lg = Tensor::scalar(0.0);
  EXPECT_EQ(rel_err(parallel(in, aug), parallel(in, local)), 0.0);
  AugState sa(aug, 2, 3, 1, 4), sl(local, 2, 3, 1, 4);
  EXPECT_EQ(rel_err(recurrent(sa, in), recurrent(sl, in)), 0.0);
}

TEST(AugAttention, StateBytesAreConstantAndCounted) {
  const AugConfig c = AugConfig::preset("aug");
  AugState st(c, 1, 9, 3, 64);
  // S (d²) + group buffer of k̂ and v (2·G·d) + conv ring (C−1)·d, per kv head, f32.
  const int64_t expect = 3 * (64 * 64 + 2 * 64 * 64 + 31 * 64) * 4;
  EXPECT_EQ(st.bytes(), expect);
  EXPECT_EQ(aug_state_bytes(c, 1, 3, 64), expect);
  Inputs in = make_inputs({1, 9, 3, 70, 64}, c, DType::F32, 1);
  aug_absorb(st, in.k, in.v);
  EXPECT_EQ(st.pos, 70);
  EXPECT_EQ(st.bytes(), expect);
  EXPECT_LT(aug_state_bytes(AugConfig::preset("local"), 1, 3, 64), expect);
}

TEST(AugAttention, AbsorbEqualsStepping) {
  const AugConfig c = config("aug", 8, 5);
  Inputs in = make_inputs({1, 3, 1, 21, 4}, c, DType::F64, 9);
  AugState a(c, 1, 3, 1, 4, DType::F64), b(c, 1, 3, 1, 4, DType::F64);
  aug_absorb(a, in.k, in.v);
  recurrent(b, in);
  Inputs next = make_inputs({1, 3, 1, 10, 4}, c, DType::F64, 10);
  next.w = in.w;
  EXPECT_LT(rel_err(recurrent(a, next), recurrent(b, next)), 1e-14);
}

TEST(AugAttention, BadConfigIsAnInputError) {
  EXPECT_THROW(AugConfig::preset("softmaxx"), InputError);
  AugConfig c;
  EXPECT_THROW(c.set("group_size", "0"), InputError);
  EXPECT_THROW(c.set("conv_taps", "-1"), InputError);
  EXPECT_THROW(c.set("group_size", "abc"), InputError);
  EXPECT_THROW(c.set("window", "3"), InputError);
  c.set("group_size", "32");
  EXPECT_EQ(c.group_size, 32);
  EXPECT_EQ(AugConfig::preset("local+conv").preset_name(), "local+conv");
}

TEST(AugAttention, TreeRejectsBadParentsAndPaths) {
  const AugConfig c = config("aug", 8, 5);
  AugState st(c, 1, 3, 1, 4, DType::F64);
  Inputs nodes = make_inputs({1, 3, 1, 3, 4}, c, DType::F64, 2);
  EXPECT_THROW(aug_tree(st, nodes.q, nodes.k, nodes.v, {-1, 2, 0}, nodes.w, nodes.ll, nodes.lg), std::logic_error);
  EXPECT_THROW(aug_advance(st, nodes.k, nodes.v, {-1, 0, 0}, {0, 2, 1}), std::logic_error);
  EXPECT_EQ(st.pos, 0);
}

}  // namespace
