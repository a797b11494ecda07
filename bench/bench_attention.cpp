// Google Benchmark: causal_attention (f32, flash-style CPU kernel) at the SmolLM2 head layout
// (9 query heads over 3 kv heads, head dim 64), forward alone and forward + backward.
// The GFLOP counter (a rate) counts the useful causal work (2 GEMMs forward; backward 5 incl. the score recompute).
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"

using namespace linspec;

namespace {
constexpr int64_t kBatch = 1, kHeads = 9, kKvHeads = 3, kHeadDim = 64;

Tensor randn(const Shape& shape, Philox& rng) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal());
  return t;
}

// FLOPs of one T×T causal GEMM pair member: 2 · heads · d · T(T+1)/2.
double causal_gemm_gflop(int64_t t) {
  return 2.0 * kBatch * kHeads * kHeadDim * static_cast<double>(t) * static_cast<double>(t + 1) / 2 / 1e9;
}

void BM_attention_forward(benchmark::State& state) {
  const int64_t t = state.range(0);
  Philox rng(1);
  Tensor q = randn({kBatch, kHeads, t, kHeadDim}, rng), k = randn({kBatch, kKvHeads, t, kHeadDim}, rng),
         v = randn({kBatch, kKvHeads, t, kHeadDim}, rng);
  NoGradGuard no_grad;
  for (auto _ : state) {
    Tensor out = ops::causal_attention(q, k, v);
    benchmark::DoNotOptimize(out.raw_data());
  }
  state.counters["GFLOP"] =
      benchmark::Counter(2 * causal_gemm_gflop(t), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_attention_forward_backward(benchmark::State& state) {
  const int64_t t = state.range(0);
  Philox rng(2);
  Tensor q = randn({kBatch, kHeads, t, kHeadDim}, rng), k = randn({kBatch, kKvHeads, t, kHeadDim}, rng),
         v = randn({kBatch, kKvHeads, t, kHeadDim}, rng), grad_out = randn({kBatch, kHeads, t, kHeadDim}, rng);
  for (Tensor* x : {&q, &k, &v}) x->set_requires_grad(true);
  for (auto _ : state) {
    Tape tape;
    TapeScope scope(tape);
    Tensor out = ops::causal_attention(q, k, v);
    backward(out, grad_out);
    benchmark::DoNotOptimize(q.grad().raw_data());
    for (Tensor* x : {&q, &k, &v}) x->zero_grad();
  }
  state.counters["GFLOP"] =
      benchmark::Counter(7 * causal_gemm_gflop(t), benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

BENCHMARK(BM_attention_forward)->RangeMultiplier(2)->Range(1024, 8192)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_attention_forward_backward)
    ->RangeMultiplier(2)
    ->Range(1024, 8192)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
