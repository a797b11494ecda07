// CUDA twins of kernels/activation.h: SiLU and SwiGLU forward/backward over device buffers (f32 / f64).
#pragma once
#include <cstdint>

namespace linspec::kernels::cuda {

template <typename T> void silu_forward(const T* x, T* out, int64_t n);
template <typename T> void silu_backward(const T* x, const T* g, T* gx, int64_t n);
template <typename T> void swiglu_forward(const T* gate, const T* up, T* out, int64_t n);
// Either output may be null (not needed).
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* g, T* g_gate, T* g_up, int64_t n);

}  // namespace linspec::kernels::cuda
