// Rotary embedding on the GPU (see kernels/rope.h): one thread per rotated pair.
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
struct Tables {
  const T* inv_freq;
  int64_t half, pos0;
  T *cos_t, *sin_t;
  __device__ void operator()(int64_t idx) const {
    const int64_t p = idx / half, i = idx % half;
    const T angle = static_cast<T>(pos0 + p) * inv_freq[i];
    cos_t[idx] = cos(angle);
    sin_t[idx] = sin(angle);
  }
};

template <typename T>
struct Apply {
  const T *x, *cos_t, *sin_t;
  T* out;
  int64_t t, d, half;
  T sign;
  __device__ void operator()(int64_t idx) const {  // idx over [bh, t, half]
    const int64_t i = idx % half, row = idx / half, p = row % t;
    const T lo = x[row * d + i], hi = x[row * d + i + half];
    const T c = cos_t[p * half + i], sn = sign * sin_t[p * half + i];
    out[row * d + i] = lo * c - hi * sn;
    out[row * d + i + half] = hi * c + lo * sn;
  }
};

}  // namespace

template <typename T>
void rope_default_inv_freq(double theta, int64_t d, T* inv_freq) {
  std::vector<T> host(static_cast<size_t>(d / 2));
  cpu_backend().of<T>().rope.default_inv_freq(theta, d, host.data());  // computed on the host, as HF does
  if (!host.empty())
    check(cudaMemcpy(inv_freq, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "rope_default_inv_freq");
}

template <typename T>
void rope_tables(const T* inv_freq, int64_t half, int64_t pos0, int64_t t, T* cos_t, T* sin_t) {
  for_each(t * half, Tables<T>{inv_freq, half, pos0, cos_t, sin_t}, "rope_tables");
}

template <typename T>
void rope_apply(const T* x, const T* cos_t, const T* sin_t, T* out, int64_t bh, int64_t t, int64_t d, bool inverse) {
  const int64_t half = d / 2;
  for_each(bh * t * half, Apply<T>{x, cos_t, sin_t, out, t, d, half, inverse ? T(-1) : T(1)}, "rope_apply");
}

namespace {
template <typename T>
RopeKernels<T> rope_table() {
  return {&rope_default_inv_freq<T>, &rope_tables<T>, &rope_apply<T>};
}
}  // namespace

void fill_rope(Backend& b) {
  b.f32.rope = rope_table<float>();
  b.f64.rope = rope_table<double>();
}

}  // namespace linspec::kernels::cuda
