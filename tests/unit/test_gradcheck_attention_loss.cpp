// causal_attention and the losses: table-driven gradient checks (f64), f32 forward/backward against
// naive double-precision references, and PyTorch goldens (tests/reference/make_attention_golden.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "core/threads.h"
#include "kernels/cpu/backend.h"
#include "tests/support/gradcheck.h"

using namespace linspec;
namespace lt = linspec::testing;
using lt::GradCase;

namespace {

// ---------------------------------------------------------------- references (double precision)

struct AttnShape {
  int64_t B, Hq, Hkv, T, S, d;
};

// Explicit masked T×S score matrix per head, softmax, then P·V; all in double.
std::vector<double> reference_attention(const AttnShape& a, const std::vector<double>& q, const std::vector<double>& k,
                                        const std::vector<double>& v, double scale) {
  std::vector<double> out(q.size());
  const int64_t group = a.Hq / a.Hkv, off = a.S - a.T;
  std::vector<double> scores(a.T * a.S);
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t h = 0; h < a.Hq; ++h) {
      const double* qh = q.data() + (b * a.Hq + h) * a.T * a.d;
      const double* kh = k.data() + (b * a.Hkv + h / group) * a.S * a.d;
      const double* vh = v.data() + (b * a.Hkv + h / group) * a.S * a.d;
      double* oh = out.data() + (b * a.Hq + h) * a.T * a.d;
      for (int64_t t = 0; t < a.T; ++t) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s < a.S; ++s) {
          double dot = 0;
          for (int64_t c = 0; c < a.d; ++c) dot += qh[t * a.d + c] * kh[s * a.d + c];
          scores[t * a.S + s] = s <= t + off ? dot * scale : -std::numeric_limits<double>::infinity();
          mx = std::max(mx, scores[t * a.S + s]);
        }
        double sum = 0;
        for (int64_t s = 0; s < a.S; ++s) sum += scores[t * a.S + s] = std::exp(scores[t * a.S + s] - mx);
        for (int64_t c = 0; c < a.d; ++c) {
          double acc = 0;
          for (int64_t s = 0; s < a.S; ++s) acc += scores[t * a.S + s] / sum * vh[s * a.d + c];
          oh[t * a.d + c] = acc;
        }
      }
    }
  return out;
}

double logsumexp(const double* x, int64_t n, double inv_tau = 1.0) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, x[j] * inv_tau);
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(x[j] * inv_tau - mx);
  return mx + std::log(s);
}

// max_i |a_i − r_i| / max(1, |r_i|): relative for large values, absolute below 1 (as in gradcheck).
double max_rel_err(const std::vector<double>& a, const std::vector<double>& r) {
  EXPECT_EQ(a.size(), r.size());
  if (a.size() != r.size()) return 1.0;
  double e = 0;
  for (size_t i = 0; i < std::min(a.size(), r.size()); ++i)
    e = std::max(e, std::fabs(a[i] - r[i]) / std::max(1.0, std::fabs(r[i])));
  return e;
}

// max |a − r| / max |r|: error relative to the tensor's scale.
double scaled_err(const std::vector<double>& a, const std::vector<double>& r) {
  EXPECT_EQ(a.size(), r.size());
  if (a.size() != r.size()) return 1.0;
  double e = 0, m = 0;
  for (size_t i = 0; i < r.size(); ++i) e = std::max(e, std::fabs(a[i] - r[i])), m = std::max(m, std::fabs(r[i]));
  return e / std::max(m, 1e-30);
}

// ---------------------------------------------------------------- gradient checks

GradCase attention_case(const std::string& name, AttnShape a, double scale = 0.0) {
  GradCase c;
  c.name = name;
  c.input_shapes = {{a.B, a.Hq, a.T, a.d}, {a.B, a.Hkv, a.S, a.d}, {a.B, a.Hkv, a.S, a.d}};
  c.fn = [scale](const std::vector<Tensor>& x) { return ops::causal_attention(x[0], x[1], x[2], scale); };
  return c;
}

GradCase cross_entropy_case(const std::string& name, int64_t n, int64_t v, std::vector<int64_t> ignored_rows,
                            int32_t ignore_index = ops::kIgnoreIndex) {
  GradCase c;
  c.name = name;
  c.input_shapes = {{n, v}, {n}};
  c.differentiable = {true, false};
  c.fn = [ignore_index](const std::vector<Tensor>& x) { return ops::cross_entropy(x[0], x[1], ignore_index); };
  c.make_input = [v, ignored_rows, ignore_index](size_t i, const Shape& shape, Philox& rng) {
    if (i == 0) return lt::random_normal(shape, DType::F64, rng, 2.0);
    Tensor t = lt::random_ints(shape, 0, static_cast<int32_t>(v), rng);
    for (int64_t r : ignored_rows) t.data<int32_t>()[r] = ignore_index;
    return t;
  };
  return c;
}

// The fused LM head + cross-entropy: hidden [..., D] and weight [V, D] differentiable, rows in chunks of `chunk`
// (a ragged last chunk when it does not divide N), some rows ignored.
GradCase linear_cross_entropy_case(const std::string& name, const Shape& hidden, int64_t v, int64_t chunk,
                                   std::vector<int64_t> ignored_rows) {
  GradCase c;
  c.name = name;
  const int64_t d = hidden.back(), n = shape_numel(hidden) / d;
  c.input_shapes = {hidden, {v, d}, {n}};
  c.differentiable = {true, true, false};
  c.fn = [chunk](const std::vector<Tensor>& x) { return ops::linear_cross_entropy(x[0], x[1], x[2], chunk); };
  c.make_input = [v, ignored_rows](size_t i, const Shape& shape, Philox& rng) {
    if (i < 2) return lt::random_normal(shape, DType::F64, rng, 1.0);
    Tensor t = lt::random_ints(shape, 0, static_cast<int32_t>(v), rng);
    for (int64_t r : ignored_rows) t.data<int32_t>()[r] = ops::kIgnoreIndex;
    return t;
  };
  return c;
}

GradCase kl_case(const std::string& name, const Shape& shape, double tau) {
  GradCase c;
  c.name = name;
  c.input_shapes = {shape, shape};
  c.fn = [tau](const std::vector<Tensor>& x) { return ops::kl_divergence(x[0], x[1], tau); };
  return c;
}

GradCase mse_case(const std::string& name, const Shape& shape) {
  GradCase c;
  c.name = name;
  c.input_shapes = {shape, shape};
  c.fn = [](const std::vector<Tensor>& x) { return ops::mse(x[0], x[1]); };
  return c;
}

// f64 attention runs with 4-query × 3-key tiles (core/ops/attention.cpp), so these lengths span several
// tiles with ragged edges, and prefix offsets S − T put the causal diagonal mid-tile.
std::vector<GradCase> grad_cases() {
  return {
      attention_case("attention_mha_T5", {1, 2, 2, 5, 5, 4}),
      attention_case("attention_gqa3_T7_odd_d", {2, 3, 1, 7, 7, 3}),
      attention_case("attention_gqa3_T13_scale", {1, 6, 2, 13, 13, 4}, 0.3),
      attention_case("attention_prefix_S11_T5_odd_d", {1, 2, 1, 5, 11, 5}),
      attention_case("attention_single_query_after_prefix", {1, 3, 3, 1, 7, 4}),
      cross_entropy_case("cross_entropy_some_ignored", 7, 5, {2, 5}),
      cross_entropy_case("cross_entropy_ignore_index_0", 6, 6, {1}, 0),
      linear_cross_entropy_case("linear_cross_entropy_chunk3_of_7", {7, 4}, 6, 3, {2, 5}),
      linear_cross_entropy_case("linear_cross_entropy_3d_one_chunk", {2, 3, 5}, 4, 64, {0}),
      kl_case("kl_tau1", {4, 6}, 1.0),
      kl_case("kl_tau2", {4, 6}, 2.0),
      kl_case("kl_tau2_3d", {2, 3, 5}, 2.0),
      mse_case("mse_matrix", {3, 5}),
      mse_case("mse_4d", {2, 1, 3, 2}),
  };
}

class GradCheckAttentionLoss : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradCheckAttentionLoss, MatchesCentralDifferences) {
  const GradCase& c = GetParam();
  const lt::GradCheckResult r = lt::gradcheck(c);
  EXPECT_LT(r.max_rel_err, 1e-6) << c.name << ": " << r.worst;
}

INSTANTIATE_TEST_SUITE_P(Ops, GradCheckAttentionLoss, ::testing::ValuesIn(grad_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; });

// A target id outside the vocabulary (and not ignore_index) is refused, the message naming the id and its row.
TEST(LossTargets, OutOfVocabularyIdIsNamedWithItsRow) {
  Philox rng(5);
  const Tensor hidden = lt::random_normal({4, 3}, DType::F32, rng), weight = lt::random_normal({6, 3}, DType::F32, rng);
  const Tensor targets = Tensor::from_vector(std::vector<int32_t>{1, ops::kIgnoreIndex, 9, 0}, {4});
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (const std::string& m : {message([&] { ops::cross_entropy(ops::linear(hidden, weight), targets); }),
                               message([&] { ops::linear_cross_entropy(hidden, weight, targets, 2); })}) {
    EXPECT_NE(m.find("target id 9 at row 2"), std::string::npos) << m;
    EXPECT_NE(m.find("[0, 6)"), std::string::npos) << m;
  }
}

// ---------------------------------------------------------------- attention, f32 vs references

struct AttnInputs {
  Tensor q, k, v;
};

AttnInputs random_attention_inputs(const AttnShape& a, DType dtype, uint64_t seed) {
  Philox rng(seed);
  return {lt::random_normal({a.B, a.Hq, a.T, a.d}, dtype, rng), lt::random_normal({a.B, a.Hkv, a.S, a.d}, dtype, rng),
          lt::random_normal({a.B, a.Hkv, a.S, a.d}, dtype, rng)};
}

TEST(CausalAttention, F32ForwardMatchesNaiveReference) {
  // 300 and 129 rows cross several 64-row tiles; S > T puts the mask diagonal mid-tile.
  const std::vector<AttnShape> shapes = {
      {2, 3, 1, 300, 300, 64}, {1, 4, 2, 100, 237, 33}, {1, 2, 2, 1, 50, 16}, {1, 9, 3, 129, 129, 64}};
  for (const AttnShape& a : shapes) {
    AttnInputs in = random_attention_inputs(a, DType::F32, 7);
    const double scale = 1.0 / std::sqrt(static_cast<double>(a.d));
    Tensor out = ops::causal_attention(in.q, in.k, in.v);
    const auto ref =
        reference_attention(a, in.q.to_vector<double>(), in.k.to_vector<double>(), in.v.to_vector<double>(), scale);
    EXPECT_LT(max_rel_err(out.to_vector<double>(), ref), 1e-5) << "T=" << a.T << " S=" << a.S << " d=" << a.d;
  }
}

TEST(CausalAttention, KernelTileSizesAgree) {
  // The f32 kernel with assorted tile shapes (including 1×1 and tiles wider than the sequence).
  const AttnShape a{1, 3, 1, 70, 90, 20};
  AttnInputs in = random_attention_inputs(a, DType::F32, 11);
  const double scale = 0.2;
  const auto ref =
      reference_attention(a, in.q.to_vector<double>(), in.k.to_vector<double>(), in.v.to_vector<double>(), scale);
  const std::vector<std::pair<int64_t, int64_t>> tiles = {{7, 5}, {16, 32}, {64, 128}, {1, 1}, {128, 64}};
  for (auto [bq, bk] : tiles) {
    kernels::AttentionDims dims{a.B, a.Hq, a.Hkv, a.T, a.S, a.d, scale, bq, bk};
    std::vector<float> out(in.q.numel()), lse(a.B * a.Hq * a.T);
    linspec::kernels::cpu_kernels<float>().attention.causal_forward(dims, in.q.data<float>(), in.k.data<float>(),
                                                                    in.v.data<float>(), out.data(), lse.data());
    EXPECT_LT(max_rel_err(std::vector<double>(out.begin(), out.end()), ref), 1e-5) << bq << "x" << bk;
  }
}

// The f32 backward (64-wide tiles, split key ranges, GQA reductions) against the f64 backward, whose
// small-tile path the gradient checks above verify.
TEST(CausalAttention, F32BackwardMatchesF64) {
  // Several threads (whatever the machine has) so the kernel splits heads into key ranges with private dQ.
  const int previous_threads = num_threads();
  set_num_threads(4);
  const std::vector<AttnShape> shapes = {{1, 1, 1, 300, 300, 64}, {2, 6, 2, 150, 200, 48}, {1, 3, 3, 67, 67, 7}};
  for (const AttnShape& a : shapes) {
    AttnInputs in64 = random_attention_inputs(a, DType::F64, 5);
    Philox rng(99);
    Tensor w64 = lt::random_normal({a.B, a.Hq, a.T, a.d}, DType::F64, rng);
    auto grads = [&](DType dtype) {
      std::vector<Tensor> leaves = {in64.q.to(dtype).clone(), in64.k.to(dtype).clone(), in64.v.to(dtype).clone()};
      for (Tensor& t : leaves) t.set_requires_grad(true);
      Tape tape;
      TapeScope scope(tape);
      backward(ops::sum(ops::mul(ops::causal_attention(leaves[0], leaves[1], leaves[2]), w64.to(dtype))));
      std::vector<std::vector<double>> g;
      for (Tensor& t : leaves) {
        EXPECT_TRUE(t.grad().defined());
        g.push_back(t.grad().defined() ? t.grad().to_vector<double>() : std::vector<double>{});
      }
      return g;
    };
    const auto g32 = grads(DType::F32), g64 = grads(DType::F64);
    for (int i = 0; i < 3; ++i)
      EXPECT_LT(scaled_err(g32[i], g64[i]), 2e-5) << "grad "
                                                  << "qkv"[i] << " T=" << a.T << " S=" << a.S;
  }
  set_num_threads(previous_threads);
}

TEST(CausalAttention, RejectsBadShapes) {
  Tensor q = Tensor::zeros({1, 3, 4, 8}), k = Tensor::zeros({1, 2, 4, 8});
  EXPECT_THROW(ops::causal_attention(q, k, k), std::logic_error);  // 3 heads over 2 kv heads
  Tensor k_short = Tensor::zeros({1, 1, 3, 8});
  EXPECT_THROW(ops::causal_attention(q, k_short, k_short), std::logic_error);  // S < T
}

// ---------------------------------------------------------------- losses, f32 vs references

TEST(CrossEntropy, F32MatchesReferenceWithIgnoredRows) {
  const int64_t n = 12, v = 5003;
  Philox rng(3);
  Tensor logits = lt::random_normal({n, v}, DType::F32, rng, 3.0);
  Tensor targets = lt::random_ints({n}, 0, v, rng);
  targets.data<int32_t>()[4] = ops::kIgnoreIndex;
  targets.data<int32_t>()[9] = ops::kIgnoreIndex;
  logits.set_requires_grad(true);
  Tape tape;
  TapeScope scope(tape);
  Tensor loss = ops::cross_entropy(logits, targets);

  const auto x = logits.to_vector<double>();
  const int32_t* tg = targets.data<int32_t>();
  double ref = 0;
  std::vector<double> ref_grad(x.size(), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    if (tg[r] == ops::kIgnoreIndex) continue;
    const double l = logsumexp(x.data() + r * v, v);
    ref += l - x[r * v + tg[r]];
    for (int64_t j = 0; j < v; ++j) ref_grad[r * v + j] = (std::exp(x[r * v + j] - l) - (j == tg[r])) / 10.0;
  }
  ref /= 10.0;  // 10 counted rows
  EXPECT_NEAR(loss.item(), ref, 1e-5 * std::fabs(ref));
  backward(loss);
  EXPECT_LT(max_rel_err(logits.grad().to_vector<double>(), ref_grad), 1e-7);
  for (int64_t j = 0; j < v; ++j) ASSERT_EQ(logits.grad().data<float>()[4 * v + j], 0.f);  // ignored row
}

TEST(CrossEntropy, AllIgnoredGivesZeroLossAndGrad) {
  Tensor logits = Tensor::full({3, 4}, 0.5);
  logits.set_requires_grad(true);
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{-100, -100, -100}, {3});
  Tape tape;
  TapeScope scope(tape);
  Tensor loss = ops::cross_entropy(logits, targets);
  EXPECT_EQ(loss.item(), 0.0);
  backward(loss);
  for (float g : logits.grad().to_vector<float>()) EXPECT_EQ(g, 0.f);
}

TEST(CrossEntropy, OutOfRangeTargetNamesRowAndId) {
  Tensor logits = Tensor::zeros({4, 5});
  for (int32_t bad : {5, -7}) {
    Tensor targets = Tensor::from_vector(std::vector<int32_t>{0, 4, -100, bad}, {4});
    try {
      ops::cross_entropy(logits, targets);
      FAIL() << "target " << bad << " accepted";
    } catch (const std::logic_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("row 3"), std::string::npos) << msg;
      EXPECT_NE(msg.find("id " + std::to_string(bad)), std::string::npos) << msg;
    }
  }
}

// The fused op equals linear() + cross_entropy() in f32, whatever the chunk, and scales its gradients by the upstream.
TEST(LinearCrossEntropy, F32MatchesTheUnfusedOpsAndScalesByTheUpstream) {
  Philox rng(41);
  const int64_t n = 37, d = 24, v = 50;
  const Tensor h0 = lt::random_normal({n, d}, DType::F32, rng, 1.0), w0 = lt::random_normal({v, d}, DType::F32, rng, 0.3);
  Tensor targets = lt::random_ints({n}, 0, static_cast<int32_t>(v), rng);
  targets.data<int32_t>()[4] = ops::kIgnoreIndex;
  auto run = [&](int64_t chunk, double upstream) {
    Tensor h = h0.clone(), w = w0.clone();
    h.set_requires_grad();
    w.set_requires_grad();
    const Tensor loss = chunk > 0 ? ops::linear_cross_entropy(h, w, targets, chunk)
                                  : ops::cross_entropy(ops::linear(h, w), targets);
    const double value = loss.item();
    backward(ops::scale(loss, upstream));
    return std::make_tuple(value, h.grad().to_vector<float>(), w.grad().to_vector<float>());
  };
  const auto [ref_loss, ref_gh, ref_gw] = run(0, 1.0);
  for (int64_t chunk : {1, 8, 37, 512}) {
    const auto [loss, gh, gw] = run(chunk, 3.0);
    EXPECT_NEAR(loss, ref_loss, 1e-5 * std::fabs(ref_loss)) << "chunk " << chunk;
    for (size_t i = 0; i < gh.size(); ++i) ASSERT_NEAR(gh[i], 3 * ref_gh[i], 1e-5) << "chunk " << chunk << " dh " << i;
    for (size_t i = 0; i < gw.size(); ++i) ASSERT_NEAR(gw[i], 3 * ref_gw[i], 1e-5) << "chunk " << chunk << " dw " << i;
  }
  // A frozen weight gets no gradient; no grad mode records nothing.
  Tensor h = h0.clone();
  h.set_requires_grad();
  backward(ops::linear_cross_entropy(h, w0, targets, 8));
  EXPECT_TRUE(h.grad().defined());
  EXPECT_FALSE(w0.grad().defined());
  EXPECT_THROW(ops::linear_cross_entropy(h0, w0, targets, 0), std::exception);
  EXPECT_THROW(ops::linear_cross_entropy(h0, w0.slice(1, 0, d - 1).contiguous(), targets), std::exception);
  Tensor bad = targets.clone();
  bad.data<int32_t>()[9] = static_cast<int32_t>(v);
  EXPECT_THROW(ops::linear_cross_entropy(h0, w0, bad), std::exception);
}

TEST(KlDivergence, F32MatchesReference) {
  const int64_t n = 6, v = 3001;
  const double tau = 2.0;
  Philox rng(4);
  Tensor s = lt::random_normal({n, v}, DType::F32, rng, 3.0), t = lt::random_normal({n, v}, DType::F32, rng, 3.0);
  const auto xs = s.to_vector<double>(), xt = t.to_vector<double>();
  double ref = 0;
  for (int64_t r = 0; r < n; ++r) {
    const double ls = logsumexp(xs.data() + r * v, v, 1 / tau), lt = logsumexp(xt.data() + r * v, v, 1 / tau);
    for (int64_t j = 0; j < v; ++j) {
      const double log_pt = xt[r * v + j] / tau - lt, log_ps = xs[r * v + j] / tau - ls;
      ref += std::exp(log_pt) * (log_pt - log_ps);
    }
  }
  ref *= tau * tau / n;
  EXPECT_NEAR(ops::kl_divergence(s, t, tau).item(), ref, 1e-5 * ref);
  EXPECT_NEAR(ops::kl_divergence(t, t, tau).item(), 0.0, 1e-5);  // identical distributions
}

TEST(Mse, F32MatchesReference) {
  Philox rng(8);
  Tensor a = lt::random_normal({100, 70}, DType::F32, rng), b = lt::random_normal({100, 70}, DType::F32, rng);
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double ref = 0;
  for (size_t i = 0; i < va.size(); ++i) ref += (va[i] - vb[i]) * (va[i] - vb[i]);
  ref /= static_cast<double>(va.size());
  EXPECT_NEAR(ops::mse(a, b).item(), ref, 1e-6 * ref);
}

// ---------------------------------------------------------------- PyTorch goldens

nlohmann::json load_golden() {
  const std::string path = std::string(LINSPEC_SOURCE_DIR) + "/tests/reference/golden/attention_loss.json";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "missing " << path;
  return nlohmann::json::parse(f);
}

// The golden inputs are f32 values written with 9 digits: round back to f32 to recover them exactly.
Tensor tensor_from(const nlohmann::json& values, const Shape& shape, DType dtype) {
  return Tensor::from_vector(values.get<std::vector<double>>(), shape).to(DType::F32).to(dtype);
}

// Runs fn on leaves built from the golden's inputs, backpropagates sum(out · weight) (or the scalar
// loss), and compares the output and every input gradient with the golden's: within 1e-5 in f32, and
// within 1e-9 in f64 (the goldens carry 12 significant digits).
void check_golden(const nlohmann::json& c, const std::vector<std::string>& in_keys, const std::vector<Shape>& shapes,
                  const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::string& out_key,
                  const std::vector<std::string>& grad_keys, const nlohmann::json* weight) {
  for (DType dtype : {DType::F32, DType::F64}) {
    std::vector<Tensor> leaves;
    for (size_t i = 0; i < in_keys.size(); ++i) {
      leaves.push_back(tensor_from(c[in_keys[i]], shapes[i], dtype).clone());
      leaves.back().set_requires_grad(true);
    }
    Tape tape;
    TapeScope scope(tape);
    Tensor out = fn(leaves);
    std::vector<double> expected_out =
        c[out_key].is_array() ? c[out_key].get<std::vector<double>>() : std::vector<double>{c[out_key].get<double>()};
    const std::string what = c["name"].get<std::string>() + (dtype == DType::F32 ? " f32" : " f64");
    const double tol = dtype == DType::F32 ? 1e-5 : 1e-9;
    EXPECT_LT(max_rel_err(out.to_vector<double>(), expected_out), tol) << what << " " << out_key;
    backward(weight ? ops::sum(ops::mul(out, tensor_from(*weight, out.shape(), dtype))) : out);
    for (size_t i = 0; i < grad_keys.size(); ++i) {
      ASSERT_TRUE(leaves[i].grad().defined()) << what << " " << grad_keys[i];
      EXPECT_LT(max_rel_err(leaves[i].grad().to_vector<double>(), c[grad_keys[i]].get<std::vector<double>>()), tol)
          << what << " " << grad_keys[i];
    }
  }
}

TEST(Golden, AttentionMatchesPyTorch) {
  const auto g = load_golden();
  ASSERT_FALSE(g["attention"].empty());
  for (const auto& c : g["attention"]) {
    const double scale = c["scale"].get<double>();
    check_golden(
        c, {"q", "k", "v"}, {c["q_shape"].get<Shape>(), c["kv_shape"].get<Shape>(), c["kv_shape"].get<Shape>()},
        [scale](const std::vector<Tensor>& x) { return ops::causal_attention(x[0], x[1], x[2], scale); }, "out",
        {"grad_q", "grad_k", "grad_v"}, &c["weight"]);
  }
}

TEST(Golden, LossesMatchPyTorch) {
  const auto g = load_golden();
  for (const auto& c : g["cross_entropy"]) {
    Tensor targets = Tensor::from_vector(c["targets"].get<std::vector<int32_t>>(), {c["shape"][0].get<int64_t>()});
    const int32_t ignore = c["ignore_index"].get<int32_t>();
    check_golden(
        c, {"logits"}, {c["shape"].get<Shape>()},
        [&](const std::vector<Tensor>& x) { return ops::cross_entropy(x[0], targets, ignore); }, "loss", {"grad"},
        nullptr);
  }
  for (const auto& c : g["kl_divergence"]) {
    const double tau = c["temperature"].get<double>();
    check_golden(
        c, {"student", "teacher"}, {c["shape"].get<Shape>(), c["shape"].get<Shape>()},
        [tau](const std::vector<Tensor>& x) { return ops::kl_divergence(x[0], x[1], tau); }, "loss",
        {"grad_student", "grad_teacher"}, nullptr);
  }
  for (const auto& c : g["mse"]) {
    check_golden(
        c, {"a", "b"}, {c["shape"].get<Shape>(), c["shape"].get<Shape>()},
        [](const std::vector<Tensor>& x) { return ops::mse(x[0], x[1]); }, "loss", {"grad_a", "grad_b"}, nullptr);
  }
  EXPECT_EQ(g["cross_entropy"].size() + g["kl_divergence"].size() + g["mse"].size(), 5u);
}

}  // namespace
