// CUDA twins of kernels/elementwise.h (device pointers, same semantics), plus the f32 <-> bf16 conversions the GEMMs
// and bf16 activations need (bit-identical to linspec::f32_to_bf16: round to nearest even, NaN stays NaN).
#pragma once
#include <cstdint>

namespace linspec::kernels::cuda {

template <typename T> void add_inplace(T* acc, const T* x, int64_t n);          // acc += x
template <typename T> void axpy(T a, const T* x, T* y, int64_t n);              // y += a x
// out[i] = a[i] op b[i % nb]
template <typename T> void add(const T* a, const T* b, T* out, int64_t n, int64_t nb);
template <typename T> void sub(const T* a, const T* b, T* out, int64_t n, int64_t nb);
template <typename T> void mul(const T* a, const T* b, T* out, int64_t n, int64_t nb);
template <typename T> void scale(const T* a, T s, T* out, int64_t n);
// Sums the leading dims of x [n/nb, nb] into out [nb] (deterministic two-pass column sum).
template <typename T> void reduce_leading(const T* x, T* out, int64_t n, int64_t nb);

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);

}  // namespace linspec::kernels::cuda
