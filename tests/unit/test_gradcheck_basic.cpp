// Table-driven gradient checks (central differences, f64) for the basic ops: matmul / linear,
// elementwise binaries and scale, shape ops and reductions. Plus forward checks of the f32 and bf16
// GEMM paths against naive double loops, and f32-vs-f64 backward agreement (the f32 backward runs
// through oneDNN with transposed / broadcast operand layouts that the f64 loops never see).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "kernels/philox.h"
#include "tests/support/gradcheck.h"

using namespace linspec;
using linspec::testing::GradCase;
using linspec::testing::gradcheck;
using linspec::testing::random_normal;

namespace linspec::testing {
// Names instead of gtest's byte dump in failure messages.
inline void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }
}  // namespace linspec::testing

namespace {

using Inputs = std::vector<Tensor>;

struct MatmulSpec {
  std::string name;
  Shape a, b;
  bool ta, tb;
};

// Shapes chosen odd (1, 3, 5, 7) so a swapped M/N/K or a wrong stride cannot pass by symmetry.
std::vector<MatmulSpec> matmul_specs() {
  return {
      {"matmul_nn", {3, 5}, {5, 7}, false, false},
      {"matmul_tn", {5, 3}, {5, 7}, true, false},
      {"matmul_nt", {3, 5}, {7, 5}, false, true},
      {"matmul_tt", {5, 3}, {7, 5}, true, true},
      {"matmul_m1", {1, 5}, {5, 3}, false, false},
      {"matmul_k1", {3, 1}, {1, 7}, false, false},
      {"matmul_batched_nn", {2, 3, 5}, {2, 5, 7}, false, false},
      {"matmul_batched_tn", {3, 5, 3}, {3, 5, 7}, true, false},
      {"matmul_batched_nt", {2, 3, 5}, {2, 7, 5}, false, true},
      {"matmul_batched_tt", {3, 5, 1}, {3, 7, 5}, true, true},
      {"matmul_batched_4d", {2, 3, 1, 5}, {2, 3, 5, 7}, false, false},
      {"matmul_bcast_nn", {3, 5, 7}, {7, 3}, false, false},
      {"matmul_bcast_nt", {3, 5, 7}, {3, 7}, false, true},
      {"matmul_bcast_tn", {3, 7, 5}, {7, 3}, true, false},
      {"matmul_bcast_tt", {3, 7, 5}, {3, 7}, true, true},
      {"matmul_bcast_4d", {2, 3, 1, 5}, {5, 7}, false, false},
  };
}

GradCase matmul_case(const MatmulSpec& s) {
  return GradCase{s.name, {s.a, s.b}, [s](const Inputs& x) { return ops::matmul(x[0], x[1], s.ta, s.tb); }, {}, {}};
}

std::vector<GradCase> cases() {
  std::vector<GradCase> t;
  auto add = [&t](std::string name, std::vector<Shape> shapes, std::function<Tensor(const Inputs&)> fn) {
    t.push_back(GradCase{std::move(name), std::move(shapes), std::move(fn), {}, {}});
  };
  for (const auto& s : matmul_specs()) t.push_back(matmul_case(s));
  add("linear_bias", {{2, 3, 5}, {7, 5}, {7}}, [](const Inputs& x) { return ops::linear(x[0], x[1], x[2]); });
  add("linear_nobias", {{3, 5}, {7, 5}}, [](const Inputs& x) { return ops::linear(x[0], x[1]); });
  add("linear_1row", {{1, 3}, {5, 3}, {5}}, [](const Inputs& x) { return ops::linear(x[0], x[1], x[2]); });

  add("add_same", {{3, 5, 7}, {3, 5, 7}}, [](const Inputs& x) { return ops::add(x[0], x[1]); });
  add("add_bcast2", {{3, 5, 7}, {5, 7}}, [](const Inputs& x) { return ops::add(x[0], x[1]); });
  add("add_bcast1", {{3, 5, 7}, {7}}, [](const Inputs& x) { return ops::add(x[0], x[1]); });
  add("sub_same", {{5, 3}, {5, 3}}, [](const Inputs& x) { return ops::sub(x[0], x[1]); });
  add("sub_bcast", {{3, 5, 7}, {5, 7}}, [](const Inputs& x) { return ops::sub(x[0], x[1]); });
  add("mul_same", {{3, 5, 7}, {3, 5, 7}}, [](const Inputs& x) { return ops::mul(x[0], x[1]); });
  add("mul_bcast2", {{3, 5, 7}, {5, 7}}, [](const Inputs& x) { return ops::mul(x[0], x[1]); });
  add("mul_bcast1", {{7, 3}, {3}}, [](const Inputs& x) { return ops::mul(x[0], x[1]); });
  // The same tensor on both sides: both gradient contributions must land in it.
  add("mul_self", {{5, 3}}, [](const Inputs& x) { return ops::mul(x[0], x[0]); });
  add("sub_add_chain", {{3, 7}, {7}},
      [](const Inputs& x) { return ops::mul(ops::sub(x[0], x[1]), ops::add(x[0], x[1])); });
  add("scale", {{3, 5}}, [](const Inputs& x) { return ops::scale(x[0], -1.7); });
  add("dropout", {{7, 9}}, [](const Inputs& x) { return ops::dropout(x[0], 0.4, 77); });

  add("reshape", {{3, 5, 7}}, [](const Inputs& x) { return ops::reshape(x[0], {15, 7}); });
  add("reshape_infer", {{3, 5, 7}}, [](const Inputs& x) { return ops::reshape(x[0], {7, -1}); });
  add("transpose_01", {{3, 5, 7}}, [](const Inputs& x) { return ops::transpose(x[0], 0, 1); });
  add("transpose_last", {{3, 5, 7}}, [](const Inputs& x) { return ops::transpose(x[0], -1, -2); });
  add("transpose_02", {{3, 5, 7}}, [](const Inputs& x) { return ops::transpose(x[0], 0, 2); });
  add("transpose_size1", {{1, 5, 3}}, [](const Inputs& x) { return ops::transpose(x[0], 0, 1); });
  add("slice_mid", {{3, 5, 7}}, [](const Inputs& x) { return ops::slice(x[0], 1, 1, 4); });
  add("slice_first", {{5, 3}}, [](const Inputs& x) { return ops::slice(x[0], 0, 2, 5); });
  add("slice_last_neg", {{3, 5, 7}}, [](const Inputs& x) { return ops::slice(x[0], -1, 3, 6); });
  add("concat_mid", {{3, 2, 7}, {3, 5, 7}, {3, 1, 7}},
      [](const Inputs& x) { return ops::concat({x[0], x[1], x[2]}, 1); });
  add("concat_first", {{1, 5}, {3, 5}}, [](const Inputs& x) { return ops::concat({x[0], x[1]}, 0); });
  add("concat_last_neg", {{3, 5, 3}, {3, 5, 1}}, [](const Inputs& x) { return ops::concat({x[0], x[1]}, -1); });
  add("concat_same_twice", {{3, 5}}, [](const Inputs& x) { return ops::concat({x[0], x[0]}, 1); });

  add("sum", {{3, 5, 7}}, [](const Inputs& x) { return ops::sum(x[0]); });
  add("mean", {{3, 5, 7}}, [](const Inputs& x) { return ops::mean(x[0]); });
  add("sum_last", {{3, 5, 7}}, [](const Inputs& x) { return ops::sum_last(x[0]); });
  add("sum_last_1d", {{7}}, [](const Inputs& x) { return ops::sum_last(x[0]); });
  // Nonlinear composite so the reductions see a non-constant upstream gradient.
  add("mean_of_square", {{5, 3}}, [](const Inputs& x) { return ops::mean(ops::mul(x[0], x[0])); });
  return t;
}

class GradCheckBasic : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradCheckBasic, MatchesCentralDifferences) {
  const GradCase& c = GetParam();
  auto r = gradcheck(c);
  EXPECT_LT(r.max_rel_err, 1e-6) << c.name << ": worst " << r.worst << " (max abs err " << r.max_abs_err << ")";
}

INSTANTIATE_TEST_SUITE_P(Ops, GradCheckBasic, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

// ---- forward checks of the GEMM paths against double loops ----

// op(X)[i][j] of a [batch..., r, c] tensor stored contiguously, with batch index bi (0 when broadcast).
double at(const std::vector<double>& x, const Shape& s, int64_t bi, int64_t i, int64_t j, bool trans) {
  const int64_t r = s[s.size() - 2], c = s[s.size() - 1];
  const int64_t base = bi * r * c;
  return trans ? x[base + j * c + i] : x[base + i * c + j];
}

struct Reference {
  std::vector<double> c, scale;  // C and Σ_k |a||b| per element (the natural error scale)
};

Reference reference_matmul(const std::vector<double>& a, const Shape& as, const std::vector<double>& b, const Shape& bs,
                           bool ta, bool tb) {
  const int64_t M = ta ? as.back() : as[as.size() - 2], K = ta ? as[as.size() - 2] : as.back();
  const int64_t N = tb ? bs[bs.size() - 2] : bs.back();
  const int64_t batch = shape_numel(as) / (M * K), batch_b = shape_numel(bs) / (K * N);
  Reference r;
  r.c.assign(batch * M * N, 0.0);
  r.scale.assign(batch * M * N, 0.0);
  for (int64_t bi = 0; bi < batch; ++bi)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double x = at(a, as, bi, i, k, ta), y = at(b, bs, batch_b == 1 ? 0 : bi, k, j, tb);
          acc += x * y;
          mag += std::fabs(x * y);
        }
        r.c[(bi * M + i) * N + j] = acc;
        r.scale[(bi * M + i) * N + j] = mag;
      }
  return r;
}

// Larger odd shapes for the oneDNN paths (blocked kernels have tails at these sizes).
std::vector<MatmulSpec> forward_specs() {
  return {
      {"nn", {37, 53}, {53, 29}, false, false},   {"tn", {53, 37}, {53, 29}, true, false},
      {"nt", {37, 53}, {29, 53}, false, true},    {"tt", {53, 37}, {29, 53}, true, true},
      {"batched", {3, 17, 33}, {3, 33, 9}, false, false},
      {"batched_tt", {3, 33, 17}, {3, 9, 33}, true, true},
      {"bcast", {3, 17, 33}, {33, 9}, false, false},
      {"bcast_tn", {3, 33, 17}, {33, 9}, true, false},
      {"bcast_nt", {5, 1, 7}, {3, 7}, false, true},
  };
}

void check_forward(ops::MatmulPrecision precision, bool round_inputs_to_bf16, double tol) {
  Philox rng(99);
  for (const auto& s : forward_specs()) {
    Tensor a = random_normal(s.a, DType::F32, rng), b = random_normal(s.b, DType::F32, rng);
    auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    if (round_inputs_to_bf16) {
      for (auto& v : av) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
      for (auto& v : bv) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
    }
    Reference ref = reference_matmul(av, s.a, bv, s.b, s.ta, s.tb);
    Tensor c = ops::matmul(a, b, s.ta, s.tb, precision);
    auto cv = c.to_vector<double>();
    ASSERT_EQ(cv.size(), ref.c.size()) << s.name;
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < cv.size(); ++i) {
      const double rel = std::fabs(cv[i] - ref.c[i]) / std::max(ref.scale[i], 1e-30);
      if (rel > worst) worst = rel, worst_i = i;
    }
    EXPECT_LT(worst, tol) << s.name << ": element " << worst_i << " got " << cv[worst_i] << " want " << ref.c[worst_i];
  }
}

TEST(MatmulForward, F32MatchesDoubleLoop) { check_forward(ops::MatmulPrecision::F32, false, 1e-4); }

TEST(MatmulForward, Bf16MatchesDoubleLoopOnRoundedInputs) { check_forward(ops::MatmulPrecision::BF16, true, 1e-3); }

// A weight stored in bf16 (inference weights): f32 activations rounded to bf16, f32 accumulation; decode shapes
// (M = 1) and verification blocks, with the weight as given or transposed, against double loops on rounded inputs.
// A bf16 weight as linear() uses it (W [N, K], trans_b) runs the batch-invariant kernel with unrounded f32
// activations; other layouts round the activations to bf16 for the library GEMM.
TEST(MatmulForward, Bf16WeightMatchesDoubleLoopOnRoundedInputs) {
  Philox rng(7);
  for (const MatmulSpec& s : std::vector<MatmulSpec>{{"decode_nt", {1, 1, 576}, {193, 576}, false, true},
                                                     {"block_nt", {2, 9, 53}, {29, 53}, false, true},
                                                     {"block_nn", {37, 53}, {53, 29}, false, false}}) {
    Tensor a = random_normal(s.a, DType::F32, rng), b = random_normal(s.b, DType::F32, rng);
    auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    if (!s.tb)
      for (auto& v : av) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
    for (auto& v : bv) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
    const Shape a2 = {shape_numel(s.a) / s.a.back(), s.a.back()};
    const Reference ref = reference_matmul(av, a2, bv, s.b, false, s.tb);
    const Tensor c = ops::matmul(a, b.to(DType::BF16), false, s.tb);
    EXPECT_EQ(c.dtype(), DType::F32);
    const auto cv = c.to_vector<double>();
    ASSERT_EQ(cv.size(), ref.c.size()) << s.name;
    for (size_t i = 0; i < cv.size(); ++i)
      ASSERT_LT(std::fabs(cv[i] - ref.c[i]) / std::max(ref.scale[i], 1e-30), 1e-5) << s.name << " element " << i;
  }
  Tensor w = Tensor::zeros({3, 4}).to(DType::BF16), x = Tensor::zeros({2, 4});
  x.set_requires_grad(true);
  EXPECT_THROW(ops::linear(x, w), std::exception);  // inference only
}

TEST(MatmulForward, Bf16ActuallyRoundsInputs) {
  // Guards against the bf16 path silently running in f32: 1 + 2^-10 is not representable in bf16.
  Tensor a = Tensor::full({1, 1}, 1.0 + 1.0 / 1024), b = Tensor::full({1, 1}, 1.0);
  EXPECT_EQ(ops::matmul(a, b, false, false, ops::MatmulPrecision::BF16).item(), 1.0);
  EXPECT_EQ(ops::matmul(a, b, false, false, ops::MatmulPrecision::F32).item(), 1.0 + 1.0 / 1024);
}

TEST(MatmulForward, DefaultPrecisionFollowsThreadSetting) {
  Tensor a = Tensor::full({1, 1}, 1.0 + 1.0 / 1024), b = Tensor::full({1, 1}, 1.0);
  ops::set_default_matmul_precision(ops::MatmulPrecision::BF16);
  const double auto_bf16 = ops::matmul(a, b).item();
  ops::set_default_matmul_precision(ops::MatmulPrecision::F32);
  EXPECT_EQ(auto_bf16, 1.0);
  EXPECT_EQ(ops::matmul(a, b).item(), 1.0 + 1.0 / 1024);
}

TEST(MatmulForward, EmptyReductionGivesZeros) {
  Tensor a = Tensor::empty({3, 0}), b = Tensor::empty({0, 5});
  for (auto p : {ops::MatmulPrecision::F32, ops::MatmulPrecision::BF16}) {
    auto c = ops::matmul(a, b, false, false, p).to_vector<float>();
    ASSERT_EQ(c.size(), 15u);
    for (float v : c) EXPECT_EQ(v, 0.f);
  }
  auto c64 = ops::matmul(a.to(DType::F64), b.to(DType::F64)).to_vector<double>();
  for (double v : c64) EXPECT_EQ(v, 0.0);
}

// ---- f32 backward (oneDNN, all layouts) agrees with the f64 backward that gradcheck verified ----

std::vector<Tensor> grads_of(const MatmulSpec& s, const Tensor& a0, const Tensor& b0, const Tensor& w0, DType dt) {
  Tensor a = a0.to(dt).clone(), b = b0.to(dt).clone(), w = w0.to(dt);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tape tape;
  TapeScope scope(tape);
  backward(ops::sum(ops::mul(ops::matmul(a, b, s.ta, s.tb, ops::MatmulPrecision::F32), w)));
  return {a.grad().to(DType::F64), b.grad().to(DType::F64)};
}

TEST(MatmulBackward, F32AgreesWithF64) {
  Philox rng(7);
  for (const auto& s : forward_specs()) {
    Tensor a = random_normal(s.a, DType::F64, rng), b = random_normal(s.b, DType::F64, rng);
    Tensor w;
    {
      NoGradGuard ng;
      w = random_normal(ops::matmul(a, b, s.ta, s.tb).shape(), DType::F64, rng);
    }
    auto g32 = grads_of(s, a, b, w, DType::F32), g64 = grads_of(s, a, b, w, DType::F64);
    for (int i = 0; i < 2; ++i) {
      auto x = g32[i].to_vector<double>(), y = g64[i].to_vector<double>();
      ASSERT_EQ(x.size(), y.size());
      double worst = 0, mag = 0;
      for (size_t j = 0; j < x.size(); ++j) worst = std::max(worst, std::fabs(x[j] - y[j])), mag = std::max(mag, std::fabs(y[j]));
      EXPECT_LT(worst, 1e-4 * std::max(mag, 1.0)) << s.name << (i == 0 ? " dA" : " dB");
    }
  }
}

// ---- forward values of the non-GEMM ops against direct loops ----

TEST(ElementwiseForward, BroadcastSuffixAndReductions) {
  Philox rng(3);
  Tensor a = random_normal({3, 5, 7}, DType::F32, rng), b = random_normal({5, 7}, DType::F32, rng);
  auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  auto add = ops::add(a, b).to_vector<float>(), sub = ops::sub(a, b).to_vector<float>(),
       mul = ops::mul(a, b).to_vector<float>(), sc = ops::scale(a, 0.5).to_vector<float>();
  for (size_t i = 0; i < av.size(); ++i) {
    EXPECT_EQ(add[i], av[i] + bv[i % 35]);
    EXPECT_EQ(sub[i], av[i] - bv[i % 35]);
    EXPECT_EQ(mul[i], av[i] * bv[i % 35]);
    EXPECT_EQ(sc[i], av[i] * 0.5f);
  }
  auto rows = ops::sum_last(a).to_vector<float>();
  ASSERT_EQ(rows.size(), 15u);
  double total = 0;
  for (int r = 0; r < 15; ++r) {
    double s = 0;
    for (int j = 0; j < 7; ++j) s += av[r * 7 + j];
    EXPECT_NEAR(rows[r], s, 1e-5);
    total += s;
  }
  EXPECT_NEAR(ops::sum(a).item(), total, 1e-4);
  EXPECT_NEAR(ops::mean(a).item(), total / 105, 1e-6);
  EXPECT_THROW(ops::add(a, Tensor::zeros({3, 5})), std::logic_error);  // prefix, not suffix
}

// The mask is the keyed Philox stream of kernels/philox.h (whose block function test_tensor checks against the
// Random123 known answers): element i is dropped iff its uniform in the dropout lane is below p; the others are
// scaled by 1/(1-p). Drop rate within 5 sigma; another key draws another mask.
TEST(DropoutForward, MaskIsTheKeyedPhiloxStream) {
  const int64_t n = 20000;
  const double p = 0.3;
  Philox rng(4);
  const Tensor x = random_normal({n}, DType::F32, rng);
  const auto xs = x.to_vector<float>();
  const auto a = ops::dropout(x, p, 99).to_vector<float>(), b = ops::dropout(x, p, 100).to_vector<float>();
  int64_t dropped = 0, differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool drop = kernels::element_uniform(99, static_cast<uint64_t>(i), kernels::kDropoutLane) < p;
    ASSERT_FLOAT_EQ(a[i], drop ? 0.f : xs[i] * static_cast<float>(1.0 / (1.0 - p))) << i;
    dropped += drop;
    differ += (a[i] == 0.f) != (b[i] == 0.f);
  }
  EXPECT_NEAR(static_cast<double>(dropped) / n, p, 5 * std::sqrt(p * (1 - p) / n));
  EXPECT_GT(differ, n / 4);
  EXPECT_EQ(ops::dropout(x, 0.0, 99).to_vector<float>(), xs);
  EXPECT_THROW(ops::dropout(x, 1.0, 99), std::exception);
}

TEST(ShapeForward, ConcatSliceTranspose) {
  Philox rng(5);
  Tensor x = random_normal({3, 5, 7}, DType::F32, rng), y = random_normal({3, 2, 7}, DType::F32, rng);
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  auto cat = ops::concat({x, y}, 1).to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 7; ++j)
      for (int k = 0; k < 7; ++k)
        EXPECT_EQ(cat[(i * 7 + j) * 7 + k], j < 5 ? xv[(i * 5 + j) * 7 + k] : yv[(i * 2 + j - 5) * 7 + k]);
  auto sl = ops::slice(x, 2, 2, 5).to_vector<float>();
  for (int i = 0; i < 15; ++i)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(sl[i * 3 + k], xv[i * 7 + 2 + k]);
  auto tr = ops::transpose(x, 0, 2).to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j)
      for (int k = 0; k < 7; ++k) EXPECT_EQ(tr[(k * 5 + j) * 3 + i], xv[(i * 5 + j) * 7 + k]);
}

}  // namespace
