// f32 activations × a weight W [n, k] read row by row on the CPU: the decode GEMMs of `--weights f32` and
// `--weights bf16` (int8 has its own, matmul_q8.cpp). A bf16 weight is widened to f32 in registers (a bf16 is the top
// half of an f32) and multiplied with the unrounded activations; decode is bound by the weight bytes.
// Every output c[m, n] is the same sequence of FMAs whatever M is and however rows are tiled, so tree verification
// reproduces single-token decoding bit for bit (a library GEMM picks a different blocking for different M, and a
// near-tie of two logits can then flip).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/backend.h"
#include "kernels/cpu/output_tiles.h"

namespace linspec::kernels::cpu {
namespace {

constexpr int64_t kStep = 32;  // inputs per iteration: two f32 vectors of 16
// How far ahead of each load a prefetch reaches. A thread walks its rows in order, so this is a stream 8 KB ahead:
// the rows (1–6 KB) are too short for the hardware prefetcher to get ahead of, and the weights come from a large L3 or
// DRAM. On a SmolLM2 step of GEMMs (bench_decode_gemm BM_decode_step_*, one token) 8 KB took bf16 from 15.4 to
// ~11 ms and f32 from 22.7 to ~20 ms against 512 bytes; 16 KB was slower again (same machine, one sitting).
constexpr int64_t kPrefetchBytes = 8192;

// The 32 weights w[kk, kk + 32) of a row as two f32 vectors; Whole: all 32 exist (plain loads, and a prefetch of the
// row ahead), otherwise the first popcount(m32) (masked loads, zeros beyond).
// `ahead`: prefetch (only the first row tile of a weight group streams it; the others read it from L1).
template <bool Whole>
__attribute__((target("avx512f,avx512bw"))) inline void load_weights(const uint16_t* p, __mmask32 m32, bool ahead,
                                                                     __m512& lo, __m512& hi) {
  __m512i raw;
  if constexpr (Whole) {
    if (ahead) _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
    raw = _mm512_loadu_si512(p);
  } else {
    raw = _mm512_maskz_loadu_epi16(m32, p);
  }
  lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(raw)), 16));
  hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(raw, 1)), 16));
}

template <bool Whole>
__attribute__((target("avx512f,avx512bw"))) inline void load_weights(const float* p, __mmask32 m32, bool ahead,
                                                                     __m512& lo, __m512& hi) {
  if constexpr (Whole) {
    if (ahead) {  // 128 bytes per step: two cache lines, each prefetched the same distance ahead
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + 64, _MM_HINT_T0);
    }
    lo = _mm512_loadu_ps(p), hi = _mm512_loadu_ps(p + 16);
  } else {
    lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m32), p);
    hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m32 >> 16), p + 16);
  }
}

// One 32-input step of a tile: whole steps load plainly (and prefetch), the tail is masked (the same operations,
// zeros beyond k).
template <int MR, int NR, bool Whole, typename W>
__attribute__((target("avx512f,avx512bw"))) inline void tile_step(const float* a, int64_t m0, int64_t k, const W* w,
                                                                  int64_t n0, int64_t kk, __mmask32 m32,
                                                                  __m512 (&acc)[MR][NR]) {
  const __mmask16 mlo = static_cast<__mmask16>(m32), mhi = static_cast<__mmask16>(m32 >> 16);
  __m512 wlo[NR], whi[NR];
  for (int j = 0; j < NR; ++j) load_weights<Whole>(w + (n0 + j) * k + kk, m32, m0 == 0, wlo[j], whi[j]);
  for (int r = 0; r < MR; ++r) {
    const float* ar = a + (m0 + r) * k + kk;
    const __m512 alo = _mm512_maskz_loadu_ps(mlo, ar), ahi = _mm512_maskz_loadu_ps(mhi, ar + 16);
    for (int j = 0; j < NR; ++j) {
      acc[r][j] = _mm512_fmadd_ps(alo, wlo[j], acc[r][j]);
      acc[r][j] = _mm512_fmadd_ps(ahi, whi[j], acc[r][j]);
    }
  }
}

template <int MR, int NR, typename W>
__attribute__((target("avx512f,avx512bw"))) void tile(const float* a, int64_t m0, int64_t k, const W* w, int64_t n0,
                                                      int64_t n_total, float* c) {
  __m512 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + kStep <= k; kk += kStep) tile_step<MR, NR, true>(a, m0, k, w, n0, kk, ~__mmask32(0), acc);
  if (kk < k) tile_step<MR, NR, false>(a, m0, k, w, n0, kk, static_cast<__mmask32>((1ull << (k - kk)) - 1), acc);
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) c[(m0 + r) * n_total + n0 + j] = _mm512_reduce_add_ps(acc[r][j]);
}

inline float weight_value(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float v;
  std::memcpy(&v, &wide, 4);
  return v;
}
inline float weight_value(float v) { return v; }

// Without AVX-512: the same per-output order in scalar code (consistent with itself for every M).
template <typename W>
void output_portable(const float* a, int64_t m, int64_t k, const W* w, int64_t n, int64_t n_total, float* c) {
  float sum = 0.f;
  for (int64_t i = 0; i < k; ++i) sum += a[m * k + i] * weight_value(w[n * k + i]);
  c[m * n_total + n] = sum;
}

template <typename W>
void gemm_weight_rows(int64_t m, int64_t n, int64_t k, const float* a, const W* w, float* c) {
  if (m == 0 || n == 0) return;
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  compute_outputs(
      m, n, k, avx512,
      [&]<int R, int C>(int64_t r, int64_t j) { linspec::kernels::cpu::tile<R, C>(a, r, k, w, j, n, c); },
      [&](int64_t r, int64_t j) { output_portable(a, r, k, w, j, n, c); });
}

}  // namespace

void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c) {
  gemm_weight_rows(m, n, k, a, w, c);
}

void gemm_f32_weight(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c) {
  gemm_weight_rows(m, n, k, a, w, c);
}

}  // namespace linspec::kernels::cpu
