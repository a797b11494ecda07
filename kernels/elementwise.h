// Elementwise loops over contiguous buffers, templated on float / double.
#pragma once
#include <cstdint>

namespace linspec::kernels::cpu {

template <typename T> void add_inplace(T* acc, const T* x, int64_t n);          // acc += x
template <typename T> void axpy(T a, const T* x, T* y, int64_t n);              // y += a x
// out[i] = a[i] op b[i % nb]  (b broadcast over the leading dims of a when nb < n)
template <typename T> void add(const T* a, const T* b, T* out, int64_t n, int64_t nb);
template <typename T> void sub(const T* a, const T* b, T* out, int64_t n, int64_t nb);
template <typename T> void mul(const T* a, const T* b, T* out, int64_t n, int64_t nb);
template <typename T> void scale(const T* a, T s, T* out, int64_t n);
// Sums the leading dims of x [n/nb, nb] into out [nb] (the gradient of a broadcast operand).
template <typename T> void reduce_leading(const T* x, T* out, int64_t n, int64_t nb);

}  // namespace linspec::kernels::cpu
