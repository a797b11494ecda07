// Google Benchmark: the inference GEMMs — few activation rows (1 token, a verified tree of 9 or 64 nodes) and a
// 1024-token forward against a SmolLM2 weight — through oneDNN's f32 GEMM and the batch-invariant kernels that
// `--weights f32|bf16|int8` run (kernels/cpu/matmul_weight_rows.cpp, matmul_q8.cpp). Reports GB/s of weight bytes
// read (decode is bound by them) and GMAC/s.
#include <benchmark/benchmark.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "kernels/cpu/backend.h"
#include "kernels/q8_format.h"

using linspec::kernels::GemmShape;

enum class Weights { F32OneDnn, F32, BF16, Q8 };

static void run(benchmark::State& state, Weights format) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::vector<float> a(m * k), w(n * k), c(m * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7919) % 201) / 100.f - 1.f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 104729) % 211) / 2000.f - 0.05f;
  std::vector<uint16_t> w16(n * k, 0x3e80);
  std::vector<uint8_t> q(n * linspec::kernels::q8_row_bytes(k));
  linspec::kernels::q8_pack_rows(w.data(), n, k, q.data());
  const auto& mm = linspec::kernels::cpu_backend().matmul;
  const GemmShape s{1, m, n, k, false, true, false};
  for (auto _ : state) {
    switch (format) {
      case Weights::F32OneDnn:
        mm.gemm_f32(s, a.data(), w.data(), c.data(), 0.f);
        break;
      case Weights::F32:
        mm.gemm_f32_weight(m, n, k, a.data(), w.data(), c.data());
        break;
      case Weights::BF16:
        mm.gemm_bf16_weight(m, n, k, a.data(), w16.data(), c.data());
        break;
      case Weights::Q8:
        mm.gemm_q8(m, n, k, a.data(), q.data(), c.data());
        break;
    }
    benchmark::DoNotOptimize(c.data());
  }
  const double weight_bytes = format == Weights::Q8 ? static_cast<double>(q.size())
                                                    : static_cast<double>(n * k) * (format == Weights::BF16 ? 2 : 4);
  state.counters["weight_GB/s"] = benchmark::Counter(weight_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMAC/s"] = benchmark::Counter(1e-9 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}

static void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t m : {1, 9, 64, 1024})
    for (auto nk : {std::pair<int64_t, int64_t>{1536, 576}, {576, 1536}, {49152, 576}})
      b->Args({m, nk.first, nk.second});
  b->UseRealTime();
}
static void BM_decode_gemm_f32_onednn(benchmark::State& s) { run(s, Weights::F32OneDnn); }
static void BM_decode_gemm_f32(benchmark::State& s) { run(s, Weights::F32); }
static void BM_decode_gemm_bf16(benchmark::State& s) { run(s, Weights::BF16); }
static void BM_decode_gemm_q8(benchmark::State& s) { run(s, Weights::Q8); }
BENCHMARK(BM_decode_gemm_f32_onednn)->Apply(shapes);
BENCHMARK(BM_decode_gemm_f32)->Apply(shapes);
BENCHMARK(BM_decode_gemm_bf16)->Apply(shapes);
BENCHMARK(BM_decode_gemm_q8)->Apply(shapes);

// One SmolLM2-135M decode step of GEMMs: 30 layers × (q, k, v, o, gate, up, down) + the LM head, every matrix its
// own buffer, as the model holds them. The single-matrix shapes above stay in cache when repeated (this box's L3 is
// larger than an int8 model); this is the stream a token really reads, so it is what the kernels' prefetch is tuned
// on. Args: activation rows (1 = AR, more = a verified tree).
namespace {
struct StepWeights {
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (n, k) per GEMM
  std::vector<std::vector<float>> f32;
  std::vector<std::vector<uint16_t>> bf16;
  std::vector<std::vector<uint8_t>> q8;
  explicit StepWeights(Weights format) {
    for (int layer = 0; layer < 30; ++layer)
      for (auto nk : {std::pair<int64_t, int64_t>{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576},
                      {1536, 576}, {576, 1536}})
        shapes.push_back(nk);
    shapes.push_back({49152, 576});
    for (auto [n, k] : shapes) {
      std::vector<float> w(n * k);
      for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 104729) % 211) / 2000.f - 0.05f;
      if (format == Weights::Q8) {
        q8.emplace_back(n * linspec::kernels::q8_row_bytes(k));
        linspec::kernels::q8_pack_rows(w.data(), n, k, q8.back().data());
      } else if (format == Weights::BF16) {
        bf16.emplace_back(n * k);
        for (size_t i = 0; i < w.size(); ++i)
          bf16.back()[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(w[i]) >> 16);
      } else {
        f32.push_back(std::move(w));
      }
    }
  }
};
}  // namespace

static void run_step(benchmark::State& state, Weights format) {
  const int64_t m = state.range(0);
  StepWeights weights(format);
  std::vector<float> a(m * 1536, 0.01f), c(m * 49152);
  const auto& mm = linspec::kernels::cpu_backend().matmul;
  double bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    for (size_t i = 0; i < weights.shapes.size(); ++i) {
      const auto [n, k] = weights.shapes[i];
      if (format == Weights::Q8) {
        mm.gemm_q8(m, n, k, a.data(), weights.q8[i].data(), c.data());
        bytes += static_cast<double>(weights.q8[i].size());
      } else if (format == Weights::BF16) {
        mm.gemm_bf16_weight(m, n, k, a.data(), weights.bf16[i].data(), c.data());
        bytes += 2.0 * n * k;
      } else {
        mm.gemm_f32_weight(m, n, k, a.data(), weights.f32[i].data(), c.data());
        bytes += 4.0 * n * k;
      }
    }
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
static void BM_decode_step_f32(benchmark::State& s) { run_step(s, Weights::F32); }
static void BM_decode_step_bf16(benchmark::State& s) { run_step(s, Weights::BF16); }
static void BM_decode_step_q8(benchmark::State& s) { run_step(s, Weights::Q8); }
// Rows: AR, and the tree sizes dynamic trees pick (3–8) and reach (16).
static void step_rows(benchmark::internal::Benchmark* b) {
  for (int m : {1, 3, 4, 8, 16}) b->Arg(m);
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_decode_step_f32)->Apply(step_rows);
BENCHMARK(BM_decode_step_bf16)->Apply(step_rows);
BENCHMARK(BM_decode_step_q8)->Apply(step_rows);
