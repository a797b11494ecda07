// Google Benchmark: the seed's augmented linear attention (preset `aug`, G = 64, C = 32) on one SmolLM2-shaped layer
// (B = 1, 9 query heads, 3 kv heads, d = 64, f32): forward + backward of the parallel form at T = 1K … 16K (linear in
// T: compare t(16K)/t(1K) with 16) through the op and through the raw kernels, forward alone, and one recurrent
// decode step with its state size.
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "attention/aug/aug_attention.h"
#include "core/rng.h"
#include "kernels/cpu/backend.h"

using namespace linspec;

namespace {
constexpr int64_t kHq = 9, kHkv = 3, kDim = 64;

Tensor randn(const Shape& shape, Philox& rng, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, DType::F32);
  // Uniform in [-scale, scale): cheap to draw, so setup does not dominate the long runs.
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>((2 * rng.uniform() - 1) * scale);
  return t;
}

benchmark::Counter tokens_per_second(int64_t T) {
  return benchmark::Counter(static_cast<double>(T), benchmark::Counter::kIsIterationInvariantRate);
}

struct Layer {
  Tensor q, k, v, w, ll, lg, grad_out;
  explicit Layer(int64_t T) {
    Philox rng(42);
    q = randn({1, kHq, T, kDim}, rng);
    k = randn({1, kHkv, T, kDim}, rng);
    v = randn({1, kHkv, T, kDim}, rng);
    w = randn({kHq, 32}, rng, 0.1);
    ll = Tensor::scalar(1.0);
    lg = Tensor::scalar(0.5);
    grad_out = randn({1, kHq, T, kDim}, rng);
  }
};

void BM_aug_forward_backward(benchmark::State& state) {
  const int64_t T = state.range(0);
  Layer L(T);
  const AugConfig cfg = AugConfig::preset("aug");
  for (Tensor* t : {&L.q, &L.k, &L.v, &L.w, &L.ll, &L.lg}) t->set_requires_grad(true);
  for (auto _ : state) {
    Tape tape;
    TapeScope scope(tape);
    Tensor o = ops::aug_attention(L.q, L.k, L.v, L.w, L.ll, L.lg, cfg);
    backward(o, L.grad_out);
    benchmark::DoNotOptimize(L.q.grad().raw_data());
    for (Tensor* t : {&L.q, &L.k, &L.v, &L.w, &L.ll, &L.lg}) t->zero_grad();
  }
  state.counters["tokens/s"] = tokens_per_second(T);
}

// The raw kernels on preallocated buffers: the same work without the tensor allocations (whose first-touch page
// faults grow with T once buffers pass the C library's 32 MB mmap threshold).
void BM_aug_kernels_forward_backward(benchmark::State& state) {
  const int64_t T = state.range(0);
  Layer L(T);
  const AugConfig cfg = AugConfig::preset("aug");
  const kernels::AugDims dm{1, kHq, kHkv, T, kDim, cfg.group_size, cfg.conv_taps, cfg.eps};
  Tensor out = Tensor::zeros(L.q.shape()), dq = Tensor::zeros(L.q.shape());
  Tensor dk = Tensor::zeros(L.k.shape()), dv = Tensor::zeros(L.v.shape()), dw = Tensor::zeros(L.w.shape());
  Tensor states = Tensor::zeros({1, kHkv, dm.groups(), kDim, kDim});
  float dll = 0, dlg = 0;
  const float lambda_global = 0.5f;
  for (auto _ : state) {
    const float *q = L.q.data<float>(), *k = L.k.data<float>(), *v = L.v.data<float>(), *w = L.w.data<float>();
    linspec::kernels::cpu_kernels<float>().aug.group_states(dm, k, v, states.data<float>());
    linspec::kernels::cpu_kernels<float>().aug.forward(dm, {}, q, k, v, states.data<float>(), w, nullptr,
                                                       &lambda_global, out.data<float>(), nullptr, nullptr, nullptr);
    linspec::kernels::cpu_kernels<float>().aug.backward(dm, {}, q, k, v, states.data<float>(), w, nullptr,
                                                        &lambda_global, L.grad_out.data<float>(), dq.data<float>(), dk.data<float>(),
                                                        dv.data<float>(), dw.data<float>(), &dll, &dlg);
    benchmark::DoNotOptimize(dq.raw_data());
  }
  state.counters["tokens/s"] = tokens_per_second(T);
}

void BM_aug_forward(benchmark::State& state) {
  const int64_t T = state.range(0);
  Layer L(T);
  const AugConfig cfg = AugConfig::preset("aug");
  NoGradGuard no_grad;
  for (auto _ : state) {
    Tensor o = ops::aug_attention(L.q, L.k, L.v, L.w, L.ll, L.lg, cfg);
    benchmark::DoNotOptimize(o.raw_data());
  }
  state.counters["tokens/s"] = tokens_per_second(T);
}

void BM_aug_decode_step(benchmark::State& state) {
  const AugConfig cfg = AugConfig::preset("aug");
  Layer L(256);
  AugState st(cfg, 1, kHq, kHkv, kDim);
  aug_absorb(st, L.k, L.v);
  Philox rng(7);
  Tensor q = randn({1, kHq, kDim}, rng), k = randn({1, kHkv, kDim}, rng), v = randn({1, kHkv, kDim}, rng);
  for (auto _ : state) {
    Tensor o = aug_step(st, q, k, v, L.w, L.ll, L.lg);
    benchmark::DoNotOptimize(o.raw_data());
  }
  state.counters["state_bytes"] = static_cast<double>(st.bytes());
}
}  // namespace

// T = 1K, 2K, 4K, 8K, 16K
static void lengths(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(2)->Range(1 << 10, 1 << 14)->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_aug_forward_backward)->Apply(lengths);
BENCHMARK(BM_aug_kernels_forward_backward)->Apply(lengths);
BENCHMARK(BM_aug_forward)->Apply(lengths);
BENCHMARK(BM_aug_decode_step)->Unit(benchmark::kMicrosecond)->UseRealTime();
