// f32 activations × bf16 weights on the CPU: the `--weights bf16` decode GEMM. The weights are widened to f32 in
// registers (a bf16 is the top half of an f32) and multiplied with the unrounded activations; decode is bound by
// the weight bytes, half of f32's. Like the Q8 GEMM, every output c[m, n] is the same sequence of FMAs whatever M
// is and however rows are tiled, so tree verification reproduces single-token decoding bit for bit (a library GEMM
// picks a different blocking for different M, and a near-tie of two logits can then flip).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/backend.h"
#include "kernels/cpu/output_tiles.h"

namespace linspec::kernels::cpu {
namespace {

constexpr int64_t kStep = 32;  // inputs per iteration: one 64-byte load of bf16 weights
// How far ahead in its weight row each load prefetches. A thread reads 4 rows of 1–3 KB side by side, too short
// for the hardware prefetcher to get ahead of; 512 bytes ahead took a SmolLM2 step of bf16 GEMMs (one token) from
// 23.2 to 15.1 ms (medians of 8 alternating runs, same machine).
constexpr int64_t kPrefetchBytes = 512;

__attribute__((target("avx512f,avx512bw"))) inline void widen(__m512i raw, __m512& lo, __m512& hi) {
  lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(raw)), 16));
  hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(raw, 1)), 16));
}

// One 32-input step of a tile: whole steps load plainly (and prefetch), the tail is masked (the same operations,
// zeros beyond k).
template <int MR, int NR, bool Whole>
__attribute__((target("avx512f,avx512bw"))) inline void tile_step(const float* a, int64_t m0, int64_t k,
                                                                   const uint16_t* w, int64_t n0, int64_t kk,
                                                                   __mmask32 m16, __m512 (&acc)[MR][NR]) {
  const __mmask16 mlo = static_cast<__mmask16>(m16), mhi = static_cast<__mmask16>(m16 >> 16);
  __m512 wlo[NR], whi[NR];
  for (int j = 0; j < NR; ++j) {
    const uint16_t* p = w + (n0 + j) * k + kk;
    if constexpr (Whole) {
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      widen(_mm512_loadu_si512(p), wlo[j], whi[j]);
    } else {
      widen(_mm512_maskz_loadu_epi16(m16, p), wlo[j], whi[j]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    const float* ar = a + (m0 + r) * k + kk;
    const __m512 alo = _mm512_maskz_loadu_ps(mlo, ar), ahi = _mm512_maskz_loadu_ps(mhi, ar + 16);
    for (int j = 0; j < NR; ++j) {
      acc[r][j] = _mm512_fmadd_ps(alo, wlo[j], acc[r][j]);
      acc[r][j] = _mm512_fmadd_ps(ahi, whi[j], acc[r][j]);
    }
  }
}

template <int MR, int NR>
__attribute__((target("avx512f,avx512bw"))) void tile(const float* a, int64_t m0, int64_t k, const uint16_t* w,
                                                      int64_t n0, int64_t n_total, float* c) {
  __m512 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + kStep <= k; kk += kStep) tile_step<MR, NR, true>(a, m0, k, w, n0, kk, ~__mmask32(0), acc);
  if (kk < k) tile_step<MR, NR, false>(a, m0, k, w, n0, kk, static_cast<__mmask32>((1ull << (k - kk)) - 1), acc);
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) c[(m0 + r) * n_total + n0 + j] = _mm512_reduce_add_ps(acc[r][j]);
}

// Without AVX-512: the same per-output order in scalar code (consistent with itself for every M).
void output_portable(const float* a, int64_t m, int64_t k, const uint16_t* w, int64_t n, int64_t n_total, float* c) {
  float sum = 0.f;
  for (int64_t i = 0; i < k; ++i) {
    uint32_t bits = static_cast<uint32_t>(w[n * k + i]) << 16;
    float wv;
    std::memcpy(&wv, &bits, 4);
    sum += a[m * k + i] * wv;
  }
  c[m * n_total + n] = sum;
}

}  // namespace

void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c) {
  if (m == 0 || n == 0) return;
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  compute_outputs(
      m, n, k, avx512,
      [&]<int R, int C>(int64_t r, int64_t j) { linspec::kernels::cpu::tile<R, C>(a, r, k, w, j, n, c); },
      [&](int64_t r, int64_t j) { output_portable(a, r, k, w, j, n, c); });
}

}  // namespace linspec::kernels::cpu
