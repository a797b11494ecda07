// Rotary position embedding in HF's rotate-half layout (f32 / f64 tables).
// x is [bh, t, d] (B·H folded): element i < d/2 pairs with i + d/2 and turns by angle (pos0 + t) · inv_freq[i].
#pragma once
#include <cstdint>

namespace linspec::kernels {

template <typename T>
struct RopeKernels {
  // inv_freq[i] = theta^(-2i/d), i < d/2, computed in T the way HF does (f32 pow for the f32 path).
  void (*default_inv_freq)(double theta, int64_t d, T* inv_freq);
  // cos/sin tables [t, d/2] for positions pos0 .. pos0 + t - 1. Angle, cos and sin are computed in T:
  // HF does the same in f32, and the f64 path stays exact for gradient checks.
  void (*tables)(const T* inv_freq, int64_t half, int64_t pos0, int64_t t, T* cos_t, T* sin_t);
  // out = rotation of x (inverse = rotation by the negative angle: the backward pass).
  void (*apply)(const T* x, const T* cos_t, const T* sin_t, T* out, int64_t bh, int64_t t, int64_t d, bool inverse);
};

}  // namespace linspec::kernels
