// CUDA twin of kernels/norm.h: RMSNorm forward/backward over rows of width d (device buffers, f32 / f64).
#pragma once
#include <cstdint>

namespace linspec::kernels::cuda {

// y = (x · rstd) · w, rstd [rows] saved for backward.
template <typename T>
void rmsnorm_forward(const T* x, const T* w, T eps, T* y, T* rstd, int64_t rows, int64_t d);
// gx and gw (overwritten, deterministic column sum); either may be null.
template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* g, T* gx, T* gw, int64_t rows, int64_t d);

}  // namespace linspec::kernels::cuda
