// RMSNorm over the last dim (HF LlamaRMSNorm); rows of width d (f32 / f64 tables).
#pragma once
#include <cstdint>

namespace linspec::kernels {

template <typename T>
struct NormKernels {
  // y = (x · rstd) · w with rstd = 1 / sqrt(mean(x²) + eps) per row; rstd [rows] is saved for backward.
  void (*rmsnorm_forward)(const T* x, const T* w, T eps, T* y, T* rstd, int64_t rows, int64_t d);
  // gx = rstd · w · g − x · rstd³ / d · Σ(g · w · x)   (per row)
  // gw = Σ_rows g · x · rstd                            (overwritten, not accumulated)
  // Either gx or gw may be null when that gradient is not needed.
  void (*rmsnorm_backward)(const T* x, const T* w, const T* rstd, const T* g, T* gx, T* gw, int64_t rows, int64_t d);
};

}  // namespace linspec::kernels
