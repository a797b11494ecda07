// The inference GEMMs of `--weights int8` (Q8), `--weights bf16` and `--weights f32`: the Q8 packed format, each CPU kernel against
// a scalar reference written here from its definition, their batch invariance (what makes speculative = AR exact),
// the ops' checks, and the CUDA twins against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "cuda_test_util.h"
#include "kernels/cpu/backend.h"
#include "kernels/q8_format.h"

namespace linspec {
namespace {

using kernels::kQ8Block;

std::vector<float> random_floats(size_t n, uint64_t seed, double stddev = 1.0) {
  Philox rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * stddev);
  return v;
}

std::vector<uint8_t> pack(const std::vector<float>& w, int64_t n, int64_t k) {
  std::vector<uint8_t> out(n * kernels::q8_row_bytes(k));
  kernels::q8_pack_rows(w.data(), n, k, out.data());
  return out;
}

// Symmetric absmax int8 of one 32-block, as the format defines it: scale = amax / 127 and
// q = round-half-even(x · (127 / amax)), both in f32.
struct Block {
  std::vector<int> q;
  double scale = 0;
};
Block quantize_block(const float* x, int64_t count) {
  Block b;
  float amax = 0;
  for (int64_t i = 0; i < count; ++i) amax = std::max(amax, std::fabs(x[i]));
  b.scale = amax / 127.f;
  const float inv = amax > 0 ? 127.f / amax : 0.f;
  for (int64_t i = 0; i < count; ++i) b.q.push_back(static_cast<int>(std::lrint(x[i] * inv)));
  return b;
}

// c[m, n] from the definition: both sides quantised per 32-block, Σ_blocks s_a s_w Σ q_a q_w, in double; and
// the same sum of absolute values (the scale of f32 rounding in it).
std::vector<double> reference(const std::vector<float>& a, const std::vector<float>& w, int64_t m, int64_t n, int64_t k,
                              std::vector<double>* magnitude = nullptr) {
  std::vector<double> c(m * n, 0.0);
  if (magnitude) magnitude->assign(m * n, 0.0);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t b0 = 0; b0 < k; b0 += kQ8Block) {
        const int64_t cnt = std::min(kQ8Block, k - b0);
        const Block qa = quantize_block(&a[r * k + b0], cnt), qw = quantize_block(&w[j * k + b0], cnt);
        int64_t dot = 0, abs_dot = 0;
        for (int64_t i = 0; i < cnt; ++i) dot += qa.q[i] * qw.q[i], abs_dot += std::abs(qa.q[i] * qw.q[i]);
        c[r * n + j] += qa.scale * qw.scale * static_cast<double>(dot);
        if (magnitude) (*magnitude)[r * n + j] += qa.scale * qw.scale * static_cast<double>(abs_dot);
      }
  return c;
}

std::vector<float> run_cpu(const std::vector<float>& a, const std::vector<uint8_t>& packed, int64_t m, int64_t n,
                           int64_t k) {
  std::vector<float> c(m * n, NAN);
  kernels::cpu_backend().matmul.gemm_q8(m, n, k, a.data(), packed.data(), c.data());
  return c;
}

struct Shape3 {
  int64_t m, n, k;
};
// Partial panels (n % 16), whole panels in tiles of one token and of several rows, partial blocks (k % 32).
const Shape3 kShapes[] = {{1, 1, 64},  {1, 7, 576},  {3, 70, 576}, {5, 33, 1536},  {1, 9, 100},
                          {6, 17, 31}, {37, 19, 200}, {1, 128, 96}, {9, 48, 576}, {2, 160, 40}};

TEST(Q8Format, DequantizedWeightsAreWithinHalfAStepOfTheOriginals) {
  const int64_t n = 21, k = 200;  // a whole panel and a partial one of 5 rows; a partial last block
  const auto w = random_floats(n * k, 1);
  const auto packed = pack(w, n, k);
  ASSERT_EQ(packed.size(), static_cast<size_t>(n * 7 * (32 + 4)));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b0 = 0; b0 < k; b0 += kQ8Block) {
      const int64_t cnt = std::min(kQ8Block, k - b0);
      const Block ref = quantize_block(&w[r * k + b0], cnt);
      for (int64_t i = 0; i < cnt; ++i) {
        const float got = kernels::q8_dequantize(packed.data(), n, k, r, b0 + i);
        EXPECT_FLOAT_EQ(got, static_cast<float>(ref.q[i] * ref.scale)) << "row " << r << " input " << b0 + i;
        EXPECT_LE(std::fabs(got - w[r * k + b0 + i]), ref.scale / 2 * 1.0001) << "row " << r << " input " << b0 + i;
      }
    }
}

TEST(Q8Format, EveryByteOfThePackedWeightHasOneOwner) {
  for (int64_t n : {1, 16, 21, 40}) {
    const int64_t k = 70, blocks = kernels::q8_blocks(k), bytes = n * kernels::q8_row_bytes(k);
    std::vector<int> seen(bytes, 0);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < blocks * kQ8Block; ++i) ++seen.at(kernels::q8_value_offset(n, k, r, i));
      for (int64_t b = 0; b < blocks; ++b)
        for (int64_t j = 0; j < 4; ++j) ++seen.at(kernels::q8_scale_offset(n, k, r, b) + j);
    }
    for (int64_t p = 0; p < bytes; ++p) ASSERT_EQ(seen[p], 1) << "n=" << n << " byte " << p;
  }
  // One 64-byte load is the same 4 inputs of 16 rows: rows side by side, 4 bytes apart.
  EXPECT_EQ(kernels::q8_value_offset(32, 64, 1, 0) - kernels::q8_value_offset(32, 64, 0, 0), 4);
  EXPECT_EQ(kernels::q8_value_offset(32, 64, 0, 4) - kernels::q8_value_offset(32, 64, 0, 0), 64);
}

TEST(Q8Gemm, MatchesTheReferenceFromTheDefinition) {
  for (const Shape3& s : kShapes) {
    const auto a = random_floats(s.m * s.k, 10 + s.k), w = random_floats(s.n * s.k, 20 + s.n, 0.05);
    const auto c = run_cpu(a, pack(w, s.n, s.k), s.m, s.n, s.k);
    std::vector<double> magnitude;
    const auto ref = reference(a, w, s.m, s.n, s.k, &magnitude);
    for (int64_t i = 0; i < s.m * s.n; ++i)
      EXPECT_NEAR(c[i], ref[i], 4e-6 * magnitude[i] + 1e-30)  // f32 sums of exact int32 block dots
          << "m=" << s.m << " n=" << s.n << " k=" << s.k << " at " << i;
  }
}

TEST(Q8Gemm, StaysWithinTheQuantisationErrorOfTheExactProduct) {
  const int64_t m = 4, n = 64, k = 576;
  const auto a = random_floats(m * k, 3), w = random_floats(n * k, 4, 0.05);
  const auto c = run_cpu(a, pack(w, n, k), m, n, k);
  double err2 = 0, ref2 = 0;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0;
      for (int64_t i = 0; i < k; ++i) exact += static_cast<double>(a[r * k + i]) * w[j * k + i];
      err2 += (c[r * n + j] - exact) * (c[r * n + j] - exact);
      ref2 += exact * exact;
    }
  // Two 8-bit roundings of Gaussian data: ~1% relative RMS; 3% leaves room, a wrong scale or layout is far above.
  EXPECT_LT(std::sqrt(err2 / ref2), 0.03);
  EXPECT_GT(std::sqrt(err2 / ref2), 1e-4);  // and it did quantise
}

// Each row of the product of m rows `a` [m, k] is, bit for bit, that row's product alone
// (run(rows, count) -> [count, n]).
template <typename Run>
void expect_each_row_equals_its_product_alone(Run&& run, const std::vector<float>& a, int64_t m, int64_t n,
                                              int64_t k) {
  const std::vector<float> all = run(a, m);
  for (int64_t r = 0; r < m; ++r) {
    const std::vector<float> one = run(std::vector<float>(a.begin() + r * k, a.begin() + (r + 1) * k), 1);
    ASSERT_EQ(std::memcmp(one.data(), all.data() + r * n, n * sizeof(float)), 0)
        << "row " << r << " of " << m << " differs from the single-row product (n=" << n << " k=" << k << ")";
  }
}

TEST(Q8Gemm, EachRowIsTheSameWhateverTheBatch) {
  for (const Shape3& s : kShapes)
    for (const int64_t m : {2, 3, 5, 41}) {  // one tile of 2-3 rows; tiles of 4 rows plus each tail
      const auto a = random_floats(m * s.k, 30 + s.k + m), w = random_floats(s.n * s.k, 40 + s.n, 0.05);
      const auto packed = pack(w, s.n, s.k);
      expect_each_row_equals_its_product_alone(
          [&](const std::vector<float>& rows, int64_t count) { return run_cpu(rows, packed, count, s.n, s.k); }, a,
          m, s.n, s.k);
    }
}

TEST(Q8Linear, OpRunsTheKernelAndChecksItsOperands) {
  const int64_t n = 12, k = 96;
  const auto wv = random_floats(n * k, 5, 0.1), xv = random_floats(2 * 3 * k, 6);
  const Tensor w = Tensor::from_vector(wv, {n, k}), x = Tensor::from_vector(xv, {2, 3, k});
  const Tensor q = ops::quantize_q8(w);
  EXPECT_EQ(q.dtype(), DType::Q8);
  EXPECT_EQ(q.shape(), (Shape{n, kernels::q8_row_bytes(k)}));
  const Tensor y = ops::linear(x, q);
  ASSERT_EQ(y.shape(), (Shape{2, 3, n}));
  const auto direct = run_cpu(xv, pack(wv, n, k), 6, n, k);
  EXPECT_EQ(y.to_vector<float>(), direct);
  // The wrong input width, a gradient through q8, conversions of packed rows: refused.
  EXPECT_THROW(ops::linear(Tensor::from_vector(random_floats(64, 7), {1, 64}), q), std::exception);
  Tensor xg = x.clone();
  xg.set_requires_grad();
  EXPECT_THROW(ops::linear(xg, q), std::exception);
  EXPECT_THROW(q.to(DType::F32), std::exception);
  EXPECT_THROW(ops::quantize_q8(Tensor::from_vector(std::vector<int32_t>{1, 2}, {1, 2})), std::exception);
}

// ---- weight-row kernels: bf16 weights (`--weights bf16`) and f32 weights (`--weights f32`) ----

std::vector<uint16_t> to_bf16(const std::vector<float>& w) {
  std::vector<uint16_t> out;
  for (float x : w) out.push_back(f32_to_bf16(x));
  return out;
}
float weight_value(uint16_t bits) { return bf16_to_f32(bits); }
float weight_value(float w) { return w; }

// The weights as the kernel of W reads them: rounded to bf16, or as they are.
template <typename W>
std::vector<W> stored(const std::vector<float>& w) {
  if constexpr (std::is_same_v<W, uint16_t>) return to_bf16(w);
  else return w;
}

template <typename W>
std::vector<float> run_rows_cpu(const std::vector<float>& a, const std::vector<W>& w, int64_t m, int64_t n, int64_t k) {
  std::vector<float> c(m * n, NAN);
  const auto& mm = kernels::cpu_backend().matmul;
  if constexpr (std::is_same_v<W, uint16_t>) mm.gemm_bf16_weight(m, n, k, a.data(), w.data(), c.data());
  else mm.gemm_f32_weight(m, n, k, a.data(), w.data(), c.data());
  return c;
}

template <typename W>
class WeightRowGemm : public ::testing::Test {};
using WeightTypes = ::testing::Types<uint16_t, float>;
class WeightTypeNames {
 public:
  template <typename W>
  static std::string GetName(int) {
    return std::is_same_v<W, uint16_t> ? "bf16" : "f32";
  }
};
TYPED_TEST_SUITE(WeightRowGemm, WeightTypes, WeightTypeNames);

TYPED_TEST(WeightRowGemm, MatchesTheExactProductOfTheStoredWeights) {
  for (const Shape3& s : kShapes) {
    const auto a = random_floats(s.m * s.k, 70 + s.k);
    const auto w = stored<TypeParam>(random_floats(s.n * s.k, 80 + s.n, 0.05));
    const auto c = run_rows_cpu(a, w, s.m, s.n, s.k);
    for (int64_t r = 0; r < s.m; ++r)
      for (int64_t j = 0; j < s.n; ++j) {
        double exact = 0, magnitude = 0;  // activations unrounded, weights as stored
        for (int64_t i = 0; i < s.k; ++i) {
          const double p = static_cast<double>(a[r * s.k + i]) * weight_value(w[j * s.k + i]);
          exact += p, magnitude += std::fabs(p);
        }
        EXPECT_NEAR(c[r * s.n + j], exact, 2e-6 * magnitude + 1e-30) << "m=" << s.m << " n=" << s.n << " k=" << s.k;
      }
  }
}

TYPED_TEST(WeightRowGemm, EachRowIsTheSameWhateverTheBatch) {
  // Every tiling of the rows: 2–4 (one tile beside 4 weight rows), 5–8 (one tile beside 3), tiles of 8 with each
  // remainder, and many.
  for (const Shape3& s : kShapes)
    for (const int64_t m : {2, 3, 4, 5, 7, 8, 11, 13, 41}) {
      const auto a = random_floats(m * s.k, 90 + s.k + m);
      const auto w = stored<TypeParam>(random_floats(s.n * s.k, 100 + s.n, 0.05));
      expect_each_row_equals_its_product_alone(
          [&](const std::vector<float>& rows, int64_t count) { return run_rows_cpu(rows, w, count, s.n, s.k); }, a,
          m, s.n, s.k);
    }
}

TEST(Bf16WeightGemm, LinearWithABf16WeightRunsIt) {
  const int64_t n = 12, k = 96;
  const auto wv = random_floats(n * k, 5, 0.1), xv = random_floats(2 * 3 * k, 6);
  const Tensor w = Tensor::from_vector(wv, {n, k}).to(DType::BF16), x = Tensor::from_vector(xv, {2, 3, k});
  EXPECT_EQ(ops::linear(x, w).to_vector<float>(), run_rows_cpu(xv, to_bf16(wv), 6, n, k));
}

// Precision F32BatchInvariant runs the f32 weight-row kernel for linear() without gradients; with a gradient, or for
// operands that are not a transposed 2-D weight, it is plain f32 (the library GEMM, differentiable).
TEST(F32WeightGemm, BatchInvariantPrecisionRunsItForInferenceOnly) {
  const int64_t n = 12, k = 96;
  const auto wv = random_floats(n * k, 5, 0.1), xv = random_floats(2 * 3 * k, 6);
  const Tensor w = Tensor::from_vector(wv, {n, k}), x = Tensor::from_vector(xv, {2, 3, k});
  const auto invariant = ops::MatmulPrecision::F32BatchInvariant;
  EXPECT_EQ(ops::linear(x, w, {}, invariant).to_vector<float>(), run_rows_cpu(xv, wv, 6, n, k));
  Tensor xg = x.clone();
  xg.set_requires_grad();
  const Tensor y = ops::linear(xg, w, {}, invariant);
  const auto library = ops::linear(x, w, {}, ops::MatmulPrecision::F32).to_vector<float>();
  EXPECT_EQ(y.to_vector<float>(), library);
  backward(ops::sum(y));
  ASSERT_TRUE(xg.grad().defined());
  const Tensor a2 = Tensor::from_vector(random_floats(3 * k, 7), {3, k});
  EXPECT_EQ(ops::matmul(a2, w, false, true, invariant).to_vector<float>(),
            ops::linear(a2, w, {}, invariant).to_vector<float>());
  const Tensor wt = Tensor::from_vector(wv, {k, n});  // not transposed: the library GEMM
  EXPECT_EQ(ops::matmul(a2, wt, false, false, invariant).to_vector<float>(),
            ops::matmul(a2, wt, false, false, ops::MatmulPrecision::F32).to_vector<float>());
}

// ---- CUDA twins (skip without a GPU, like every CUDA-vs-CPU case) ----
TYPED_TEST(WeightRowGemm, CudaMatchesCpu) {
  LINSPEC_REQUIRE_GPU();
#ifdef LINSPEC_WITH_CUDA
  using cuda_test::Dev;
  for (const Shape3& s : kShapes) {
    const auto a = random_floats(s.m * s.k, 110 + s.k);
    const auto w = stored<TypeParam>(random_floats(s.n * s.k, 120 + s.n, 0.05));
    const auto cpu = run_rows_cpu(a, w, s.m, s.n, s.k);
    Dev<float> da(a), dc(s.m * s.n);
    Dev<TypeParam> dw(w);
    const auto& mm = cuda_test::kgpu_backend().matmul;
    if constexpr (std::is_same_v<TypeParam, uint16_t>) mm.gemm_bf16_weight(s.m, s.n, s.k, da.get(), dw.get(), dc.get());
    else mm.gemm_f32_weight(s.m, s.n, s.k, da.get(), dw.get(), dc.get());
    cuda_test::expect_close("weight-row gemm m=" + std::to_string(s.m), cpu, dc.host(), 1e-5);
  }
#endif
}

TEST(Q8Gemm, CudaMatchesCpu) {
  LINSPEC_REQUIRE_GPU();
#ifdef LINSPEC_WITH_CUDA
  using cuda_test::Dev;
  for (const Shape3& s : kShapes) {
    const auto a = random_floats(s.m * s.k, 50 + s.k), w = random_floats(s.n * s.k, 60 + s.n, 0.05);
    const auto packed = pack(w, s.n, s.k);
    const auto cpu = run_cpu(a, packed, s.m, s.n, s.k);
    Dev<float> da(a), dc(s.m * s.n);
    Dev<uint8_t> dw(packed);
    cuda_test::kgpu_backend().matmul.gemm_q8(s.m, s.n, s.k, da.get(), dw.get(), dc.get());
    cuda_test::expect_close("gemm_q8 m=" + std::to_string(s.m) + " k=" + std::to_string(s.k), cpu, dc.host(), 1e-5);
  }
#endif
}

}  // namespace
}  // namespace linspec
