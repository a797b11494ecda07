// Elementwise kernels over contiguous buffers (f32 / f64 tables; every pointer is memory of the backend's device).
#pragma once
#include <cstdint>

namespace linspec::kernels {

template <typename T>
struct ElementwiseKernels {
  void (*add_inplace)(T* acc, const T* x, int64_t n);  // acc += x
  void (*axpy)(T a, const T* x, T* y, int64_t n);      // y += a x
  // out[i] = a[i] op b[i % nb]  (b broadcast over the leading dims of a when nb < n)
  void (*add)(const T* a, const T* b, T* out, int64_t n, int64_t nb);
  void (*sub)(const T* a, const T* b, T* out, int64_t n, int64_t nb);
  void (*mul)(const T* a, const T* b, T* out, int64_t n, int64_t nb);
  void (*scale)(const T* a, T s, T* out, int64_t n);
  // Sums the leading dims of x [n/nb, nb] into out [nb] (the gradient of a broadcast operand); deterministic.
  void (*reduce_leading)(const T* x, T* out, int64_t n, int64_t nb);
  // Σ x and Σ x², accumulated in double and returned to the host (losses, gradient norms); deterministic.
  double (*sum)(const T* x, int64_t n);
  double (*sum_squares)(const T* x, int64_t n);
  // Inverted dropout: out[i] = x[i] · m_i, m_i = 0 when element_uniform(key, i, kDropoutLane) < p (kernels/philox.h),
  // else 1 / (1 − p). The mask depends on (key, i) only, so the backward is the same call on the gradient and every
  // backend draws the same mask. In place (out == x) is allowed.
  void (*dropout)(const T* x, T* out, int64_t n, double p, uint64_t key);
};

}  // namespace linspec::kernels
