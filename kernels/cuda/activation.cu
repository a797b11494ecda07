// SiLU / SwiGLU on the GPU (see kernels/activation.h): one fused pass each.
#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
__device__ inline T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

template <typename T>
struct SiluForward {
  const T* x;
  T* out;
  __device__ void operator()(int64_t i) const { out[i] = x[i] * sigmoid(x[i]); }
};

template <typename T>
struct SiluBackward {
  const T *x, *g;
  T* gx;
  __device__ void operator()(int64_t i) const {
    const T s = sigmoid(x[i]);
    gx[i] = g[i] * s * (T(1) + x[i] * (T(1) - s));
  }
};

template <typename T>
struct SwigluForward {
  const T *gate, *up;
  T* out;
  __device__ void operator()(int64_t i) const { out[i] = gate[i] * sigmoid(gate[i]) * up[i]; }
};

template <typename T>
struct SwigluBackward {
  const T *gate, *up, *g;
  T *g_gate, *g_up;
  __device__ void operator()(int64_t i) const {
    const T x = gate[i], s = sigmoid(x);
    if (g_gate) g_gate[i] = g[i] * up[i] * s * (T(1) + x * (T(1) - s));
    if (g_up) g_up[i] = g[i] * x * s;
  }
};

}  // namespace

template <typename T>
void silu_forward(const T* x, T* out, int64_t n) {
  for_each(n, SiluForward<T>{x, out}, "silu_forward");
}
template <typename T>
void silu_backward(const T* x, const T* g, T* gx, int64_t n) {
  for_each(n, SiluBackward<T>{x, g, gx}, "silu_backward");
}
template <typename T>
void swiglu_forward(const T* gate, const T* up, T* out, int64_t n) {
  for_each(n, SwigluForward<T>{gate, up, out}, "swiglu_forward");
}
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* g, T* g_gate, T* g_up, int64_t n) {
  if (!g_gate && !g_up) return;
  for_each(n, SwigluBackward<T>{gate, up, g, g_gate, g_up}, "swiglu_backward");
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

}  // namespace linspec::kernels::cuda
