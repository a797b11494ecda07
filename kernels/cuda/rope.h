// CUDA twin of kernels/rope.h (HF rotate-half layout; device buffers, f32 / f64).
#pragma once
#include <cstdint>

namespace linspec::kernels::cuda {

// inv_freq[i] = theta^(-2i/d) (computed on the host exactly as the CPU kernel does, then copied to the device).
template <typename T> void rope_default_inv_freq(double theta, int64_t d, T* inv_freq);
// cos/sin tables [t, d/2] for positions pos0 .. pos0 + t - 1, angle computed in T.
template <typename T>
void rope_tables(const T* inv_freq, int64_t half, int64_t pos0, int64_t t, T* cos_t, T* sin_t);
// x [bh, t, d] -> out, rotated (inverse: by the negative angle, the backward pass). out may alias x.
template <typename T>
void rope_apply(const T* x, const T* cos_t, const T* sin_t, T* out, int64_t bh, int64_t t, int64_t d, bool inverse);

}  // namespace linspec::kernels::cuda
