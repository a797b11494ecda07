// SiLU / SwiGLU loops: one pass each, vectorised through exp_fast (no libm call in the f32 loops).
#include "kernels/backend.h"
#include "kernels/cpu/simd_math.h"

namespace linspec::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 14;

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_fast(-x));
}

// One loop body per (needs g_gate, needs g_up) combination so the inner loop has no branches.
template <typename T, bool kGate, bool kUp>
void swiglu_backward_impl(const T* gate, const T* up, const T* g, T* g_gate, T* g_up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T x = gate[i];
    const T s = sigmoid(x);
    if constexpr (kGate) g_gate[i] = g[i] * up[i] * s * (T(1) + x * (T(1) - s));
    if constexpr (kUp) g_up[i] = g[i] * x * s;
  }
}
}  // namespace

template <typename T>
void silu_forward(const T* x, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * sigmoid(x[i]);
}

template <typename T>
void silu_backward(const T* x, const T* g, T* gx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    gx[i] = g[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

template <typename T>
void swiglu_forward(const T* gate, const T* up, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* g, T* g_gate, T* g_up, int64_t n) {
  if (g_gate && g_up) swiglu_backward_impl<T, true, true>(gate, up, g, g_gate, g_up, n);
  else if (g_gate) swiglu_backward_impl<T, true, false>(gate, up, g, g_gate, g_up, n);
  else if (g_up) swiglu_backward_impl<T, false, true>(gate, up, g, g_gate, g_up, n);
}

namespace {
template <typename T>
ActivationKernels<T> activation_table() {
  return {&silu_forward<T>, &silu_backward<T>, &swiglu_forward<T>, &swiglu_backward<T>};
}
}  // namespace

void fill_activation(Backend& b) {
  b.f32.activation = activation_table<float>();
  b.f64.activation = activation_table<double>();
}

}  // namespace linspec::kernels::cpu
