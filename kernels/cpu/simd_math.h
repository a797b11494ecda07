// Vectorisable building blocks for the softmax-style kernels (attention, losses). Without -ffast-math
// GCC neither vectorises std::exp nor a float max-reduction, so both are spelled out here in forms it
// does vectorise. exp: f32 uses a branch-free range reduction + polynomial (max rel. error ~2e-7 for x in
// [-87, 88]); f64 (the gradient-check path) keeps std::exp.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace linspec::kernels::cpu {

// Serial (one thread, vectorised) dot product and y += a x for the short rows of the attention kernels; the
// parallel elementwise kernels are in kernels/cpu/elementwise.cpp.
namespace simd {

// Σ a_i b_i
template <typename T>
inline T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y += a x
template <typename T>
inline void axpy(T a, const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace simd

// e^x = 2^n · e^r with n = round(x·log₂e) and |r| <= ln2/2; e^r by its degree-7 Taylor polynomial.
// Inputs below -87 return ~1.6e-38 instead of underflowing: callers mask what must be exactly 0.
inline float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float n = std::nearbyint(x * 1.44269504088896341f);
  // ln2 split in a high part exact in few bits and a low correction, so r keeps full precision.
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

inline double exp_fast(double x) { return std::exp(x); }

// max of x[0, n), n >= 1: independent per-lane maxima (an elementwise max the compiler vectorises),
// folded at the end.
template <typename T>
inline T max_of(const T* x, int64_t n) {
  constexpr int kLanes = 64 / sizeof(T);
  T lanes[kLanes];
  for (int l = 0; l < kLanes; ++l) lanes[l] = x[0];
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) lanes[l] = x[j + l] > lanes[l] ? x[j + l] : lanes[l];
  T m = x[0];
  for (int l = 0; l < kLanes; ++l) m = lanes[l] > m ? lanes[l] : m;
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

}  // namespace linspec::kernels::cpu
