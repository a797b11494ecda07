// Google Benchmark: oneDNN GEMM in f32 and bf16 (2048³ and the SmolLM2 projection shapes).
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cpu/backend.h"

using linspec::kernels::GemmShape;

static void run_gemm(benchmark::State& state, bool bf16) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  std::vector<uint16_t> a16(m * k, 0x3f00), b16(k * n, 0x3e80);
  GemmShape s{1, m, n, k, false, true, false};
  for (auto _ : state) {
    const auto& mm = linspec::kernels::cpu_backend().matmul;
    if (bf16) mm.gemm_bf16(s, a16.data(), b16.data(), c.data(), 0.f);
    else mm.gemm_f32(s, a.data(), b.data(), c.data(), 0.f);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
static void BM_gemm_f32(benchmark::State& s) { run_gemm(s, false); }
static void BM_gemm_bf16(benchmark::State& s) { run_gemm(s, true); }
BENCHMARK(BM_gemm_f32)->Args({2048, 2048, 2048})->Args({1024, 1536, 576})->Args({1024, 49152, 576})->UseRealTime();
BENCHMARK(BM_gemm_bf16)->Args({2048, 2048, 2048})->Args({1024, 1536, 576})->Args({1024, 49152, 576})->UseRealTime();
