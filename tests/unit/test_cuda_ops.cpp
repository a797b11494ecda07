// CUDA kernels vs their CPU twins, one table entry per kernel family (GEMM, elementwise, conversions, activations,
// RMSNorm, RoPE, embedding, losses, AdamW, the caching allocator). Attention and aug linear attention have their own
// table in test_cuda_attention_ops.cpp. Every entry skips with a message when there is no GPU or no CUDA backend.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "tests/unit/cuda_test_util.h"

#ifdef LINSPEC_WITH_CUDA
#include "kernels/cuda/allocator.h"
#endif

using namespace linspec;
using namespace linspec::cuda_test;

namespace {

#ifdef LINSPEC_WITH_CUDA
namespace gpu = kernels::cuda;

// ---- GEMM ----

struct GemmCase {
  kernels::GemmShape s;
  float beta;
};
const std::vector<GemmCase> kGemmShapes = {
    {{1, 33, 17, 45, false, false, false}, 0.f}, {{2, 16, 24, 9, false, true, false}, 0.f},
    {{3, 20, 12, 31, true, false, true}, 1.f},   {{2, 64, 48, 40, true, true, false}, 1.f},
    {{1, 7, 5, 0, false, false, false}, 0.f},  // empty reduction: C = 0
};

int64_t a_size(const kernels::GemmShape& s) { return s.batch * s.m * s.k; }
int64_t b_size(const kernels::GemmShape& s) { return (s.broadcast_b ? 1 : s.batch) * s.k * s.n; }
int64_t c_size(const kernels::GemmShape& s) { return s.batch * s.m * s.n; }

void gemm_f32_case() {
  Philox rng(11);
  for (const auto& [s, beta] : kGemmShapes) {
    auto a = random_vector<float>(a_size(s), rng), b = random_vector<float>(b_size(s), rng);
    auto c = random_vector<float>(c_size(s), rng);
    Dev<float> da(a), db(b), dc(c);
    kcpu_backend().matmul.gemm_f32(s, a.data(), b.data(), c.data(), beta);
    kgpu_backend().matmul.gemm_f32(s, da.get(), db.get(), dc.get(), beta);
    expect_close("gemm_f32 m=" + std::to_string(s.m), c, dc.host(), 1e-5);
  }
}

void gemm_f64_case() {
  Philox rng(12);
  for (const auto& [s, beta] : kGemmShapes) {
    auto a = random_vector<double>(a_size(s), rng), b = random_vector<double>(b_size(s), rng);
    auto c = random_vector<double>(c_size(s), rng);
    Dev<double> da(a), db(b), dc(c);
    kcpu_backend().matmul.gemm_f64(s, a.data(), b.data(), c.data(), beta);
    kgpu_backend().matmul.gemm_f64(s, da.get(), db.get(), dc.get(), beta);
    expect_close("gemm_f64 m=" + std::to_string(s.m), c, dc.host(), 1e-12);
  }
}

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = f32_to_bf16(x[i]);
  return out;
}

// bf16 products are exact in f32, so CPU and GPU differ only in summation order.
void gemm_bf16_case() {
  Philox rng(13);
  for (const auto& [s, beta] : kGemmShapes) {
    auto a = to_bf16(random_vector<float>(a_size(s), rng)), b = to_bf16(random_vector<float>(b_size(s), rng));
    auto c = random_vector<float>(c_size(s), rng);
    auto c16_ref = c;
    Dev<uint16_t> da(a), db(b);
    Dev<float> dc(c);
    kcpu_backend().matmul.gemm_bf16(s, a.data(), b.data(), c.data(), beta);
    kgpu_backend().matmul.gemm_bf16(s, da.get(), db.get(), dc.get(), beta);
    expect_close("gemm_bf16 m=" + std::to_string(s.m), c, dc.host(), 1e-5);

    // bf16 output: the f32 result rounded once (accumulating into a bf16 C reads the rounded C).
    std::vector<uint16_t> c16 = to_bf16(c16_ref);
    std::vector<float> c16_as_f32(c16.size());
    for (size_t i = 0; i < c16.size(); ++i) c16_as_f32[i] = bf16_to_f32(c16[i]);
    kcpu_backend().matmul.gemm_bf16(s, a.data(), b.data(), c16_as_f32.data(), beta);
    Dev<uint16_t> dc16(c16);
    kgpu_backend().matmul.gemm_bf16_out(s, da.get(), db.get(), dc16.get(), beta);
    std::vector<float> got(c16.size());
    const auto h = dc16.host();
    for (size_t i = 0; i < h.size(); ++i) got[i] = bf16_to_f32(h[i]);
    expect_close("gemm_bf16_out m=" + std::to_string(s.m), c16_as_f32, got, 1.0 / 128);
  }
}

void gemm_f32_via_bf16_case() {
  Philox rng(14);
  for (const auto& [s, beta] : kGemmShapes) {
    auto a = random_vector<float>(a_size(s), rng), b = random_vector<float>(b_size(s), rng);
    auto c = random_vector<float>(c_size(s), rng);
    Dev<float> da(a), db(b), dc(c);
    kcpu_backend().matmul.gemm_f32_via_bf16(s, a.data(), b.data(), c.data(), beta);
    kgpu_backend().matmul.gemm_f32_via_bf16(s, da.get(), db.get(), dc.get(), beta);
    expect_close("gemm_f32_via_bf16 m=" + std::to_string(s.m), c, dc.host(), 1e-5);
  }
}

// ---- elementwise and conversions ----

template <typename T>
void elementwise_case() {
  Philox rng(21);
  const int64_t n = 3000, nb = 120;
  auto a = random_vector<T>(n, rng), b = random_vector<T>(n, rng), bb = random_vector<T>(nb, rng);
  Dev<T> da(a), db(b), dbb(bb);
  std::vector<T> ref(n);
  auto check_binary = [&](const char* name, auto cpu_fn, auto gpu_fn, const std::vector<T>& rhs, Dev<T>& drhs,
                          int64_t m) {
    Dev<T> out(static_cast<size_t>(n));
    cpu_fn(a.data(), rhs.data(), ref.data(), n, m);
    gpu_fn(da.get(), drhs.get(), out.get(), n, m);
    expect_close(name, ref, out.host(), 0.0);
  };
  check_binary("add", kcpu<T>().elementwise.add, kgpu<T>().elementwise.add, b, db, n);
  check_binary("add (broadcast)", kcpu<T>().elementwise.add, kgpu<T>().elementwise.add, bb, dbb, nb);
  check_binary("sub (broadcast)", kcpu<T>().elementwise.sub, kgpu<T>().elementwise.sub, bb, dbb, nb);
  check_binary("mul", kcpu<T>().elementwise.mul, kgpu<T>().elementwise.mul, b, db, n);
  {
    Dev<T> out(static_cast<size_t>(n));
    kcpu<T>().elementwise.scale(a.data(), T(0.37), ref.data(), n);
    kgpu<T>().elementwise.scale(da.get(), T(0.37), out.get(), n);
    expect_close("scale", ref, out.host(), 0.0);
  }
  {
    auto y = b;
    Dev<T> dy(b);
    kcpu<T>().elementwise.axpy(T(-1.5), a.data(), y.data(), n);
    kgpu<T>().elementwise.axpy(T(-1.5), da.get(), dy.get(), n);
    expect_close("axpy", y, dy.host(), tolerance<T>());
    kcpu<T>().elementwise.add_inplace(y.data(), a.data(), n);
    kgpu<T>().elementwise.add_inplace(dy.get(), da.get(), n);
    expect_close("add_inplace", y, dy.host(), tolerance<T>());
  }
  {
    std::vector<T> sums(nb);
    Dev<T> dsums(static_cast<size_t>(nb));
    kcpu<T>().elementwise.reduce_leading(a.data(), sums.data(), n, nb);
    kgpu<T>().elementwise.reduce_leading(da.get(), dsums.get(), n, nb);
    expect_close("reduce_leading", sums, dsums.host(), tolerance<T>());
  }
}

void bf16_conversion_case() {
  Philox rng(22);
  std::vector<float> x = random_vector<float>(5000, rng, 100.0);
  const float specials[] = {0.f, -0.f, INFINITY, -INFINITY, NAN, 1e-40f, -3.4e38f,
                            1.00390625f /* tie: rounds to even */, 1.01171875f /* tie: rounds up */};
  x.insert(x.end(), std::begin(specials), std::end(specials));
  Dev<float> dx(x);
  Dev<uint16_t> d16(x.size());
  kgpu_backend().memory.convert(dx.get(), DType::F32, d16.get(), DType::BF16, static_cast<int64_t>(x.size()));
  const auto got = d16.host();
  size_t mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) mismatches += got[i] != f32_to_bf16(x[i]);
  EXPECT_EQ(mismatches, 0u) << "f32_to_bf16 must be bit-identical to the host rounding";
  Dev<float> back(x.size());
  kgpu_backend().memory.convert(d16.get(), DType::BF16, back.get(), DType::F32, static_cast<int64_t>(x.size()));
  const auto b = back.host();
  for (size_t i = 0; i < x.size(); ++i) {
    const float ref = bf16_to_f32(got[i]);
    if (std::isnan(ref)) EXPECT_TRUE(std::isnan(b[i]));
    else EXPECT_EQ(std::memcmp(&ref, &b[i], 4), 0) << "bf16_to_f32 at " << i;
  }
}

// ---- activations, norm, rope ----

template <typename T>
void activation_case() {
  Philox rng(31);
  const int64_t n = 4097;
  auto x = random_vector<T>(n, rng, 3.0), up = random_vector<T>(n, rng), g = random_vector<T>(n, rng);
  Dev<T> dx(x), dup(up), dg(g);
  std::vector<T> r1(n), r2(n);
  Dev<T> o1(static_cast<size_t>(n)), o2(static_cast<size_t>(n));
  const double tol = tolerance<T>();
  kcpu<T>().activation.silu_forward(x.data(), r1.data(), n);
  kgpu<T>().activation.silu_forward(dx.get(), o1.get(), n);
  expect_close("silu_forward", r1, o1.host(), tol);
  kcpu<T>().activation.silu_backward(x.data(), g.data(), r1.data(), n);
  kgpu<T>().activation.silu_backward(dx.get(), dg.get(), o1.get(), n);
  expect_close("silu_backward", r1, o1.host(), tol);
  kcpu<T>().activation.swiglu_forward(x.data(), up.data(), r1.data(), n);
  kgpu<T>().activation.swiglu_forward(dx.get(), dup.get(), o1.get(), n);
  expect_close("swiglu_forward", r1, o1.host(), tol);
  kcpu<T>().activation.swiglu_backward(x.data(), up.data(), g.data(), r1.data(), r2.data(), n);
  kgpu<T>().activation.swiglu_backward(dx.get(), dup.get(), dg.get(), o1.get(), o2.get(), n);
  expect_close("swiglu_backward (gate)", r1, o1.host(), tol);
  expect_close("swiglu_backward (up)", r2, o2.host(), tol);
  Dev<T> only_up(static_cast<size_t>(n));
  kgpu<T>().activation.swiglu_backward(dx.get(), dup.get(), dg.get(), static_cast<T*>(nullptr), only_up.get(), n);
  expect_close("swiglu_backward (up only)", r2, only_up.host(), tol);
}

template <typename T>
void rmsnorm_case() {
  Philox rng(32);
  for (auto [rows, d] : {std::pair<int64_t, int64_t>{37, 96}, {300, 576}, {5, 7}}) {
    auto x = random_vector<T>(rows * d, rng, 2.0), w = random_vector<T>(d, rng), g = random_vector<T>(rows * d, rng);
    std::vector<T> y(rows * d), rstd(rows), gx(rows * d), gw(d);
    Dev<T> dx(x), dw(w), dg(g), dy(static_cast<size_t>(rows * d)), drstd(static_cast<size_t>(rows)),
        dgx(static_cast<size_t>(rows * d)), dgw(static_cast<size_t>(d));
    kcpu<T>().norm.rmsnorm_forward(x.data(), w.data(), T(1e-5), y.data(), rstd.data(), rows, d);
    kgpu<T>().norm.rmsnorm_forward(dx.get(), dw.get(), T(1e-5), dy.get(), drstd.get(), rows, d);
    expect_close("rmsnorm_forward y", y, dy.host(), tolerance<T>());
    expect_close("rmsnorm_forward rstd", rstd, drstd.host(), tolerance<T>());
    kcpu<T>().norm.rmsnorm_backward(x.data(), w.data(), rstd.data(), g.data(), gx.data(), gw.data(), rows, d);
    kgpu<T>().norm.rmsnorm_backward(dx.get(), dw.get(), drstd.get(), dg.get(), dgx.get(), dgw.get(), rows, d);
    expect_close("rmsnorm_backward gx", gx, dgx.host(), tolerance<T>());
    expect_close("rmsnorm_backward gw", gw, dgw.host(), tolerance<T>() * 10);
  }
}

template <typename T>
void rope_case() {
  Philox rng(33);
  const int64_t d = 64, half = d / 2, bh = 6, t = 45, pos0 = 17;
  std::vector<T> inv(half), cos_t(t * half), sin_t(t * half);
  Dev<T> dinv(static_cast<size_t>(half)), dcos(static_cast<size_t>(t * half)), dsin(static_cast<size_t>(t * half));
  kcpu<T>().rope.default_inv_freq(1e5, d, inv.data());
  kgpu<T>().rope.default_inv_freq(1e5, d, dinv.get());
  expect_close("rope_default_inv_freq", inv, dinv.host(), 0.0);
  kcpu<T>().rope.tables(inv.data(), half, pos0, t, cos_t.data(), sin_t.data());
  kgpu<T>().rope.tables(dinv.get(), half, pos0, t, dcos.get(), dsin.get());
  expect_close("rope_tables cos", cos_t, dcos.host(), tolerance<T>());
  expect_close("rope_tables sin", sin_t, dsin.host(), tolerance<T>());
  auto x = random_vector<T>(bh * t * d, rng);
  Dev<T> dx(x), out(x.size());
  std::vector<T> ref(x.size());
  for (bool inverse : {false, true}) {
    kcpu<T>().rope.apply(x.data(), cos_t.data(), sin_t.data(), ref.data(), bh, t, d, inverse);
    kgpu<T>().rope.apply(dx.get(), dcos.get(), dsin.get(), out.get(), bh, t, d, inverse);
    expect_close(inverse ? "rope_apply inverse" : "rope_apply", ref, out.host(), tolerance<T>());
  }
}

// ---- embedding (bit-exact: both sides sum each id's rows in sequence order) ----

template <typename T>
void embedding_case() {
  Philox rng(41);
  const int64_t vocab = 301, d = 40, n = 777;
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(rng.below(2) ? 7 : vocab));  // many repeats
  auto table = random_vector<T>(vocab * d, rng), gout = random_vector<T>(n * d, rng);
  Dev<int32_t> dids(ids);
  Dev<T> dtable(table), dout(static_cast<size_t>(n * d)), dgout(gout);
  std::vector<T> out(n * d);
  kcpu<T>().embedding.forward(table.data(), ids.data(), out.data(), n, d);
  kgpu<T>().embedding.forward(dtable.get(), dids.get(), dout.get(), n, d);
  expect_close("embedding_forward", out, dout.host(), 0.0);
  for (bool overwrite : {true, false}) {
    auto grad = random_vector<T>(vocab * d, rng);
    Dev<T> dgrad(grad);
    kcpu<T>().embedding.backward(gout.data(), ids.data(), grad.data(), n, d, vocab, overwrite);
    kgpu<T>().embedding.backward(dgout.get(), dids.get(), dgrad.get(), n, d, vocab, overwrite);
    expect_close(overwrite ? "embedding_backward (overwrite)" : "embedding_backward (accumulate)", grad, dgrad.host(),
                 0.0);
  }
}

// ---- losses ----

template <typename T>
void cross_entropy_case() {
  Philox rng(51);
  const int64_t n = 13, v = 1000;
  const int32_t ignore = -100;
  auto logits = random_vector<T>(n * v, rng, 4.0);
  std::vector<int32_t> targets(n);
  for (int64_t r = 0; r < n; ++r) targets[r] = r % 5 == 3 ? ignore : static_cast<int32_t>(rng.below(v));
  Dev<T> dlogits(logits), dlse(static_cast<size_t>(n)), dgrad(static_cast<size_t>(n * v));
  Dev<int32_t> dtargets(targets);
  std::vector<T> lse(n), grad(n * v);
  const auto ref = kcpu<T>().loss.cross_entropy_forward(logits.data(), targets.data(), n, v, ignore, lse.data());
  const auto got = kgpu<T>().loss.cross_entropy_forward(dlogits.get(), dtargets.get(), n, v, ignore, dlse.get());
  EXPECT_EQ(got.count, ref.count);
  expect_close_scalar("cross_entropy loss_sum", ref.loss_sum, got.loss_sum, tolerance<T>());
  expect_close("cross_entropy lse", lse, dlse.host(), tolerance<T>());
  const T coef = T(1) / static_cast<T>(ref.count);
  kcpu<T>().loss.cross_entropy_backward(logits.data(), targets.data(), lse.data(), n, v, ignore, coef, grad.data());
  kgpu<T>().loss.cross_entropy_backward(dlogits.get(), dtargets.get(), dlse.get(), n, v, ignore, coef, dgrad.get());
  expect_close("cross_entropy_backward", grad, dgrad.host(), tolerance<T>() * 10);
}

template <typename T>
void kl_case() {
  Philox rng(52);
  const int64_t n = 9, v = 1531;
  const T tau = T(2);
  auto s = random_vector<T>(n * v, rng, 3.0), t = random_vector<T>(n * v, rng, 3.0);
  Dev<T> ds(s), dt(t), dls(static_cast<size_t>(n)), dlt(static_cast<size_t>(n)), dkl(static_cast<size_t>(n));
  std::vector<T> ls(n), lt(n), kl(n), gs(n * v), gt(n * v);
  const double ref = kcpu<T>().loss.kl_forward(s.data(), t.data(), n, v, tau, ls.data(), lt.data(), kl.data());
  const double got = kgpu<T>().loss.kl_forward(ds.get(), dt.get(), n, v, tau, dls.get(), dlt.get(), dkl.get());
  expect_close_scalar("kl_forward total", ref, got, tolerance<T>() * 10);
  expect_close("kl lse_s", ls, dls.host(), tolerance<T>());
  expect_close("kl lse_t", lt, dlt.host(), tolerance<T>());
  expect_close("kl row_kl", kl, dkl.host(), tolerance<T>() * 50);  // a difference of logsumexps: cancellation
  const T coef = T(0.7);
  Dev<T> dgs(gs.size()), dgt(gt.size());
  kcpu<T>().loss.kl_backward(s.data(), t.data(), ls.data(), lt.data(), kl.data(), n, v, tau, coef, gs.data(), gt.data());
  kgpu<T>().loss.kl_backward(ds.get(), dt.get(), dls.get(), dlt.get(), dkl.get(), n, v, tau, coef, dgs.get(), dgt.get());
  expect_close("kl_backward student", gs, dgs.host(), tolerance<T>() * 10);
  expect_close("kl_backward teacher", gt, dgt.host(), tolerance<T>() * 50);
}

template <typename T>
void squared_error_case() {
  Philox rng(53);
  const int64_t n = 10007;
  auto a = random_vector<T>(n, rng), b = random_vector<T>(n, rng);
  Dev<T> da(a), db(b), dga(static_cast<size_t>(n)), dgb(static_cast<size_t>(n));
  expect_close_scalar("squared_error_sum", kcpu<T>().loss.squared_error_sum(a.data(), b.data(), n),
                      kgpu<T>().loss.squared_error_sum(da.get(), db.get(), n), 1e-12);
  std::vector<T> ga(n), gb(n);
  kcpu<T>().loss.squared_error_backward(a.data(), b.data(), n, T(0.25), ga.data(), gb.data());
  kgpu<T>().loss.squared_error_backward(da.get(), db.get(), n, T(0.25), dga.get(), dgb.get());
  expect_close("squared_error_backward a", ga, dga.host(), 0.0);
  expect_close("squared_error_backward b", gb, dgb.host(), 0.0);
}

// ---- AdamW ----

void adamw_case() {
  Philox rng(61);
  const std::vector<int64_t> sizes = {1, 100, 70000, 3};  // one tensor spans two work chunks
  std::vector<std::vector<float>> p, g, m, v;
  std::vector<std::unique_ptr<Dev<float>>> dp, dg, dm, dv;
  std::vector<kernels::AdamWTensor> host_t, dev_t;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i];
    p.push_back(random_vector<float>(n, rng));
    g.push_back(random_vector<float>(n, rng, 0.1));
    m.push_back(random_vector<float>(n, rng, 0.01));
    std::vector<float> vv = random_vector<float>(n, rng, 0.01);
    for (auto& x : vv) x = x * x;
    v.push_back(vv);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    dp.push_back(std::make_unique<Dev<float>>(p[i]));
    dg.push_back(std::make_unique<Dev<float>>(g[i]));
    dm.push_back(std::make_unique<Dev<float>>(m[i]));
    dv.push_back(std::make_unique<Dev<float>>(v[i]));
    kernels::AdamWCoeffs c;
    c.decay = 1.f - 1e-3f * (i % 2 == 0 ? 0.1f : 0.f);
    c.step_size = 1e-3f / (1.f - 0.9f);
    c.inv_sqrt_bc2 = 1.f / std::sqrt(1.f - 0.999f);
    host_t.push_back({p[i].data(), g[i].data(), m[i].data(), v[i].data(), sizes[i], c});
    dev_t.push_back({dp[i]->get(), dg[i]->get(), dm[i]->get(), dv[i]->get(), sizes[i], c});
  }
  kcpu_backend().adamw.update(host_t);
  kgpu_backend().adamw.update(dev_t);
  for (size_t i = 0; i < sizes.size(); ++i) {
    expect_close("adamw param " + std::to_string(i), p[i], dp[i]->host(), 1e-6);
    expect_close("adamw m " + std::to_string(i), m[i], dm[i]->host(), 1e-6);
    expect_close("adamw v " + std::to_string(i), v[i], dv[i]->host(), 1e-6);
  }
}

// ---- caching allocator ----

void allocator_case() {
  EXPECT_EQ(gpu::allocator_round_size(1), 512u);
  EXPECT_EQ(gpu::allocator_round_size(513), 1024u);
  EXPECT_EQ(gpu::allocator_round_size((1u << 20) + 1), 2u << 20);
  const auto before = gpu::allocator_stats();
  void* a = gpu::cached_malloc(1000);
  const auto during = gpu::allocator_stats();
  EXPECT_EQ(during.in_use_bytes - before.in_use_bytes, 1024);
  gpu::cached_free(a);
  void* b = gpu::cached_malloc(900);  // same bucket: served from the cache
  const auto after = gpu::allocator_stats();
  EXPECT_EQ(b, a);
  EXPECT_GE(after.cache_hits, before.cache_hits + 1);
  EXPECT_GE(after.peak_in_use_bytes, during.in_use_bytes);
  gpu::cached_free(b);
  gpu::empty_cache();
  EXPECT_EQ(gpu::allocator_stats().cached_bytes, 0);
  EXPECT_THROW(gpu::cached_free(reinterpret_cast<void*>(0x1234)), std::logic_error);
}
#endif  // LINSPEC_WITH_CUDA

std::vector<OpCase> cases() {
  return {
      LINSPEC_CUDA_CASE("gemm_f32", gemm_f32_case),
      LINSPEC_CUDA_CASE("gemm_f64", gemm_f64_case),
      LINSPEC_CUDA_CASE("gemm_bf16", gemm_bf16_case),
      LINSPEC_CUDA_CASE("gemm_f32_via_bf16", gemm_f32_via_bf16_case),
      LINSPEC_CUDA_CASE("elementwise_f32", elementwise_case<float>),
      LINSPEC_CUDA_CASE("elementwise_f64", elementwise_case<double>),
      LINSPEC_CUDA_CASE("bf16_conversion", bf16_conversion_case),
      LINSPEC_CUDA_CASE("activation_f32", activation_case<float>),
      LINSPEC_CUDA_CASE("activation_f64", activation_case<double>),
      LINSPEC_CUDA_CASE("rmsnorm_f32", rmsnorm_case<float>),
      LINSPEC_CUDA_CASE("rmsnorm_f64", rmsnorm_case<double>),
      LINSPEC_CUDA_CASE("rope_f32", rope_case<float>),
      LINSPEC_CUDA_CASE("rope_f64", rope_case<double>),
      LINSPEC_CUDA_CASE("embedding_f32", embedding_case<float>),
      LINSPEC_CUDA_CASE("embedding_f64", embedding_case<double>),
      LINSPEC_CUDA_CASE("cross_entropy_f32", cross_entropy_case<float>),
      LINSPEC_CUDA_CASE("cross_entropy_f64", cross_entropy_case<double>),
      LINSPEC_CUDA_CASE("kl_f32", kl_case<float>),
      LINSPEC_CUDA_CASE("kl_f64", kl_case<double>),
      LINSPEC_CUDA_CASE("squared_error_f32", squared_error_case<float>),
      LINSPEC_CUDA_CASE("adamw", adamw_case),
      LINSPEC_CUDA_CASE("caching_allocator", allocator_case),
  };
}

class CudaOps : public ::testing::TestWithParam<OpCase> {};

TEST_P(CudaOps, MatchesCpu) {
  LINSPEC_REQUIRE_GPU();
  GetParam().run();
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaOps, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) { return info.param.name; });

}  // namespace
