// Small vector helpers shared by the augmented-linear-attention kernels (parallel, decode, tree). Internal.
#pragma once
#include "kernels/cpu/simd_math.h"
#include <cmath>
#include <cstdint>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace linspec::kernels::cpu::aug_detail {

using ::linspec::kernels::cpu::simd::axpy;
using ::linspec::kernels::cpu::simd::dot;

// relu(x)² — the seed's local attention weight.
template <typename T>
inline T relu_sq(T x) {
  return x > T(0) ? x * x : T(0);
}

// y += Σ_{i<n} w[i] · rows[i] over d channels. The sum runs over 64-channel slices with the partial sums in registers
// (four independent 512-bit FMA chains) instead of re-storing y per row.
template <typename T>
inline void add_weighted_rows(int64_t n, int64_t d, const T* w, const T* const* rows, T* y) {
  constexpr int64_t kLanes = 64;
  int64_t e0 = 0;
  for (; e0 + kLanes <= d; e0 += kLanes) {
    T acc[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) acc[j] = y[e0 + j];
    for (int64_t i = 0; i < n; ++i) {
      const T wi = w[i];
      const T* r = rows[i] + e0;
#pragma omp simd
      for (int64_t j = 0; j < kLanes; ++j) acc[j] += wi * r[j];
    }
    for (int64_t j = 0; j < kLanes; ++j) y[e0 + j] = acc[j];
  }
  for (int64_t i = 0; i < n && e0 < d; ++i) axpy(w[i], rows[i] + e0, y + e0, d - e0);
}

#if defined(__AVX512F__)
// The same sum for f32 with the four accumulators pinned to registers: GCC turned the generic loop above into scalar
// FMAs through a stack array (perf: most of a decode step's attention time). Each lane still computes
// y_e ← fma(w_i, row_i[e], y_e) in row order, so the result equals the generic version's bit for bit.
template <>
inline void add_weighted_rows<float>(int64_t n, int64_t d, const float* w, const float* const* rows, float* y) {
  int64_t e0 = 0;
  for (; e0 + 64 <= d; e0 += 64) {
    __m512 a0 = _mm512_loadu_ps(y + e0), a1 = _mm512_loadu_ps(y + e0 + 16), a2 = _mm512_loadu_ps(y + e0 + 32),
           a3 = _mm512_loadu_ps(y + e0 + 48);
    for (int64_t i = 0; i < n; ++i) {
      const __m512 wi = _mm512_set1_ps(w[i]);
      const float* r = rows[i] + e0;
      a0 = _mm512_fmadd_ps(wi, _mm512_loadu_ps(r), a0);
      a1 = _mm512_fmadd_ps(wi, _mm512_loadu_ps(r + 16), a1);
      a2 = _mm512_fmadd_ps(wi, _mm512_loadu_ps(r + 32), a2);
      a3 = _mm512_fmadd_ps(wi, _mm512_loadu_ps(r + 48), a3);
    }
    _mm512_storeu_ps(y + e0, a0), _mm512_storeu_ps(y + e0 + 16, a1);
    _mm512_storeu_ps(y + e0 + 32, a2), _mm512_storeu_ps(y + e0 + 48, a3);
  }
  for (; e0 + 16 <= d; e0 += 16) {
    __m512 a = _mm512_loadu_ps(y + e0);
    for (int64_t i = 0; i < n; ++i) a = _mm512_fmadd_ps(_mm512_set1_ps(w[i]), _mm512_loadu_ps(rows[i] + e0), a);
    _mm512_storeu_ps(y + e0, a);
  }
  for (; e0 < d; ++e0) {
    float a = y[e0];
    for (int64_t i = 0; i < n; ++i) a = std::fma(w[i], rows[i][e0], a);
    y[e0] = a;
  }
}
#endif

// Weights and row pointers for add_weighted_rows, reused across calls.
template <typename T>
struct WeightedRows {
  std::vector<T> w;
  std::vector<const T*> rows;
  explicit WeightedRows(int64_t capacity) { w.reserve(capacity), rows.reserve(capacity); }
  void add(T weight, const T* row) { w.push_back(weight), rows.push_back(row); }
  void apply(int64_t d, T* y) const { add_weighted_rows(static_cast<int64_t>(w.size()), d, w.data(), rows.data(), y); }
};

}  // namespace linspec::kernels::cpu::aug_detail
