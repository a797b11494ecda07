// Google Benchmark: the decode GEMMs — few activation rows (1 token, a verified tree of 9 or 64 nodes) against a
// SmolLM2 weight — in f32 (oneDNN), bf16 weights (oneDNN) and Q8 weights (kernels/cpu/matmul_q8.cpp). Reports
// GB/s of weight bytes read (decode is bound by them) and GMAC/s.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/backend.h"
#include "kernels/q8_format.h"

using linspec::kernels::GemmShape;

enum class Weights { F32, BF16, Q8 };

static void run(benchmark::State& state, Weights format) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::vector<float> a(m * k), w(n * k), c(m * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7919) % 201) / 100.f - 1.f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 104729) % 211) / 2000.f - 0.05f;
  std::vector<uint16_t> a16(m * k, 0x3f00), w16(n * k, 0x3e80);
  std::vector<uint8_t> q(n * linspec::kernels::q8_row_bytes(k));
  linspec::kernels::q8_pack_rows(w.data(), n, k, q.data());
  const auto& mm = linspec::kernels::cpu_backend().matmul;
  const GemmShape s{1, m, n, k, false, true, false};
  for (auto _ : state) {
    switch (format) {
      case Weights::F32:
        mm.gemm_f32(s, a.data(), w.data(), c.data(), 0.f);
        break;
      case Weights::BF16:
        mm.gemm_bf16(s, a16.data(), w16.data(), c.data(), 0.f);
        break;
      case Weights::Q8:
        mm.gemm_q8(m, n, k, a.data(), q.data(), c.data());
        break;
    }
    benchmark::DoNotOptimize(c.data());
  }
  const double weight_bytes = format == Weights::Q8 ? static_cast<double>(q.size())
                                                    : static_cast<double>(n * k) * (format == Weights::F32 ? 4 : 2);
  state.counters["weight_GB/s"] = benchmark::Counter(weight_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMAC/s"] = benchmark::Counter(1e-9 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}

static void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t m : {1, 9, 64})
    for (auto nk : {std::pair<int64_t, int64_t>{1536, 576}, {576, 1536}, {49152, 576}})
      b->Args({m, nk.first, nk.second});
  b->UseRealTime();
}
static void BM_decode_gemm_f32(benchmark::State& s) { run(s, Weights::F32); }
static void BM_decode_gemm_bf16(benchmark::State& s) { run(s, Weights::BF16); }
static void BM_decode_gemm_q8(benchmark::State& s) { run(s, Weights::Q8); }
BENCHMARK(BM_decode_gemm_f32)->Apply(shapes);
BENCHMARK(BM_decode_gemm_bf16)->Apply(shapes);
BENCHMARK(BM_decode_gemm_q8)->Apply(shapes);
