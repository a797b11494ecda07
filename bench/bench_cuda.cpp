// Google Benchmark of the CUDA kernels: cuBLASLt bf16 GEMM (and cuBLAS f32 for reference), causal flash attention
// forward+backward, and the aug chunked linear attention forward+backward at B=8, H=32, D=128, T=4096 (the shape of
// flash-linear-attention's published chunk-kernel number). Every iteration ends with a device synchronisation, so
// real time is kernel time. Skips (with an error message) without the CUDA backend or without a GPU.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda_runtime.h"

#ifdef LINSPEC_WITH_CUDA

namespace {
using namespace linspec;
namespace gpu = linspec::kernels::cuda;
const linspec::kernels::Backend& kgpu_backend() { return *linspec::kernels::cuda_backend(); }
template <typename T>
const linspec::kernels::FloatKernels<T>& kgpu() {
  return kgpu_backend().of<T>();
}

bool gpu_ready(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device visible: CUDA benchmarks not run");
    return false;
  }
  return true;
}

// Device buffer filled with N(0, stddev²) values: a 1 Mi-element random pattern copied over the whole buffer.
template <typename T>
class Buffer {
 public:
  explicit Buffer(int64_t n, double stddev = 1.0, uint64_t seed = 1) : n_(n) {
    p_ = static_cast<T*>(kgpu_backend().memory.alloc(sizeof(T) * static_cast<size_t>(n)));
    const int64_t chunk = std::min<int64_t>(n, int64_t(1) << 20);
    std::vector<T> pattern(static_cast<size_t>(chunk));
    Philox rng(seed);
    for (auto& x : pattern) x = make(rng.normal() * stddev);
    for (int64_t off = 0; off < n; off += chunk)
      kgpu_backend().memory.copy_from_host(p_ + off, pattern.data(),
                                           sizeof(T) * static_cast<size_t>(std::min(chunk, n - off)));
  }
  ~Buffer() { kgpu_backend().memory.free(p_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* get() { return p_; }

 private:
  static T make(double x) {
    if constexpr (sizeof(T) == 2)
      return f32_to_bf16(static_cast<float>(x));  // bf16 bit patterns
    else
      return static_cast<T>(x);
  }
  int64_t n_;
  T* p_;
};

void BM_cuda_gemm_bf16(benchmark::State& state) {
  if (!gpu_ready(state)) return;
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  Buffer<uint16_t> a(m * k), b(k * n);
  Buffer<float> c(m * n);
  const kernels::GemmShape s{1, m, n, k, false, true, false};
  kgpu_backend().matmul.gemm_bf16(s, a.get(), b.get(), c.get(), 0.f);  // warm-up: algorithm selection
  kgpu_backend().memory.synchronize();
  for (auto _ : state) {
    kgpu_backend().matmul.gemm_bf16(s, a.get(), b.get(), c.get(), 0.f);
    kgpu_backend().memory.synchronize();
  }
  state.counters["TFLOP/s"] = benchmark::Counter(2.0 * m * n * k / 1e12, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_cuda_gemm_bf16)
    ->Args({4096, 4096, 4096})
    ->Args({16384, 1536, 576})   // SmolLM2 FFN up-projection at 8 × 2048 tokens
    ->Args({16384, 49152, 576})  // SmolLM2 LM head at 8 × 2048 tokens
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_cuda_gemm_f32(benchmark::State& state) {
  if (!gpu_ready(state)) return;
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  Buffer<float> a(m * k), b(k * n), c(m * n);
  const kernels::GemmShape s{1, m, n, k, false, true, false};
  for (auto _ : state) {
    kgpu_backend().matmul.gemm_f32(s, a.get(), b.get(), c.get(), 0.f);
    kgpu_backend().memory.synchronize();
  }
  state.counters["TFLOP/s"] = benchmark::Counter(2.0 * m * n * k / 1e12, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_cuda_gemm_f32)->Args({4096, 4096, 4096})->UseRealTime()->Unit(benchmark::kMillisecond);

// Causal attention forward + backward (f32). Args: B, Hq, Hkv, T, d.
void BM_cuda_attention_fwd_bwd(benchmark::State& state) {
  if (!gpu_ready(state)) return;
  kernels::AttentionDims dm;
  dm.batch = state.range(0), dm.heads_q = state.range(1), dm.heads_kv = state.range(2);
  dm.t = dm.s = state.range(3), dm.d = state.range(4);
  dm.scale = 1.0 / std::sqrt(static_cast<double>(dm.d));
  const int64_t nq = dm.batch * dm.heads_q * dm.t * dm.d, nkv = dm.batch * dm.heads_kv * dm.s * dm.d;
  Buffer<float> q(nq, 1, 1), k(nkv, 1, 2), v(nkv, 1, 3), dout(nq, 1, 4), out(nq), lse(dm.batch * dm.heads_q * dm.t),
      dq(nq), dk(nkv), dv(nkv);
  for (auto _ : state) {
    kgpu<float>().attention.causal_forward(dm, q.get(), k.get(), v.get(), out.get(), lse.get());
    kgpu<float>().attention.causal_backward(dm, q.get(), k.get(), v.get(), out.get(), lse.get(), dout.get(), dq.get(),
                                            dk.get(), dv.get());
    kgpu_backend().memory.synchronize();
  }
  // Causal: half the T×S score matrix; forward 2 GEMMs, backward 5 (with the recomputed QKᵀ) of 2·T·S·d/2 each.
  const double flops = 7.0 * 2.0 * dm.batch * dm.heads_q * dm.t * dm.s * dm.d / 2.0;
  state.counters["TFLOP/s"] = benchmark::Counter(flops / 1e12, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_cuda_attention_fwd_bwd)
    ->Args({8, 9, 3, 2048, 64})  // SmolLM2-135M at T = 2048
    ->Args({8, 32, 32, 4096, 128})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// aug chunked linear attention, f32, all three branches. Args: B, H, D, T; range(4): 0 forward only, 1 forward +
// backward (including the group states, which the forward needs).
void BM_cuda_aug_chunked(benchmark::State& state) {
  if (!gpu_ready(state)) return;
  kernels::AugDims dm;
  dm.batch = state.range(0), dm.q_heads = dm.kv_heads = state.range(1), dm.head_dim = state.range(2);
  dm.seq = state.range(3), dm.group = 64, dm.taps = 32;
  const bool backward = state.range(4) != 0;
  const kernels::AugBranches br{true, true, true};
  const int64_t n = dm.batch * dm.q_heads * dm.seq * dm.head_dim;
  const int64_t ns = dm.batch * dm.kv_heads * dm.groups() * dm.head_dim * dm.head_dim;
  Buffer<float> q(n, 1, 1), k(n, 1, 2), v(n, 1, 3), dout(n, 1, 4), w(dm.q_heads * dm.taps, 0.1, 5), states(ns), out(n),
      dq(n), dk(n), dv(n), dw(dm.q_heads * dm.taps), dl(1), dg(1), lambda_global(1, 0.0, 6);
  for (auto _ : state) {
    kgpu<float>().aug.group_states(dm, k.get(), v.get(), states.get());
    kgpu<float>().aug.forward(dm, br, q.get(), k.get(), v.get(), states.get(), w.get(), nullptr, lambda_global.get(), out.get(), nullptr,
                              nullptr, nullptr);
    if (backward)
      kgpu<float>().aug.backward(dm, br, q.get(), k.get(), v.get(), states.get(), w.get(), nullptr, lambda_global.get(), dout.get(),
                                 dq.get(), dk.get(), dv.get(), dw.get(), dl.get(), dg.get());
    kgpu_backend().memory.synchronize();
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(dm.batch * dm.seq), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_cuda_aug_chunked)
    ->Args({8, 32, 128, 4096, 0})
    ->Args({8, 32, 128, 4096, 1})  // compare: flash-linear-attention chunk fwd+bwd, 3.375 ms on an H100
    ->Args({8, 9, 64, 2048, 1})    // SmolLM2-135M shape (aug layers use Hq = Hkv here)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

#else  // !LINSPEC_WITH_CUDA

namespace {
void BM_cuda_unavailable(benchmark::State& state) {
  state.SkipWithError("built without CUDA (configure with -DLINSPEC_CUDA=ON): CUDA benchmarks not run");
}
BENCHMARK(BM_cuda_unavailable);
}  // namespace

#endif
