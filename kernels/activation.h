// SiLU and SwiGLU (silu(gate) * up) over contiguous buffers (f32 / f64 tables).
#pragma once
#include <cstdint>

namespace linspec::kernels {

template <typename T>
struct ActivationKernels {
  // out = x · sigmoid(x)
  void (*silu_forward)(const T* x, T* out, int64_t n);
  // gx = g · d silu(x)/dx = g · s (1 + x (1 - s)),  s = sigmoid(x)
  void (*silu_backward)(const T* x, const T* g, T* gx, int64_t n);
  // out = silu(gate) · up
  void (*swiglu_forward)(const T* gate, const T* up, T* out, int64_t n);
  // g_gate = g · up · silu'(gate), g_up = g · silu(gate); either output may be null (not needed).
  void (*swiglu_backward)(const T* gate, const T* up, const T* g, T* g_gate, T* g_up, int64_t n);
};

}  // namespace linspec::kernels
