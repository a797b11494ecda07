// RMSNorm on the GPU (see kernels/norm.h): one block per row for y and gx; gw is a two-pass column sum so the
// result does not depend on scheduling.
#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

int row_threads(int64_t d) { return d >= 512 ? 256 : d >= 128 ? 128 : 32; }

template <typename T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* w, T eps, T* y, T* rstd, int64_t d) {
  const int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  T ss = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) ss += xr[j] * xr[j];
  ss = block_sum(ss);
  const T s = T(1) / sqrt(ss / static_cast<T>(d) + eps);
  if (threadIdx.x == 0) rstd[r] = s;
  T* yr = y + r * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] = (xr[j] * s) * w[j];
}

template <typename T>
__global__ void rmsnorm_gx_kernel(const T* x, const T* w, const T* rstd, const T* g, T* gx, int64_t d) {
  const int64_t r = blockIdx.x;
  const T *xr = x + r * d, *gr = g + r * d;
  T dot = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dot += gr[j] * w[j] * xr[j];
  dot = block_sum(dot);
  const T s = rstd[r], c = dot * s * s * s / static_cast<T>(d);
  T* o = gx + r * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) o[j] = s * w[j] * gr[j] - c * xr[j];
}

template <typename T>
struct WeightGradTerm {  // g · x · rstd, summed over rows for gw
  const T *x, *g, *rstd;
  int64_t d;
  __device__ T operator()(int64_t r, int64_t j) const { return g[r * d + j] * x[r * d + j] * rstd[r]; }
};

}  // namespace

template <typename T>
void rmsnorm_forward(const T* x, const T* w, T eps, T* y, T* rstd, int64_t rows, int64_t d) {
  if (rows <= 0) return;
  rmsnorm_forward_kernel<<<static_cast<unsigned>(rows), row_threads(d), 0, stream()>>>(x, w, eps, y, rstd, d);
  check_launch("rmsnorm_forward");
}

template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* g, T* gx, T* gw, int64_t rows, int64_t d) {
  if (gx && rows > 0) {
    rmsnorm_gx_kernel<<<static_cast<unsigned>(rows), row_threads(d), 0, stream()>>>(x, w, rstd, g, gx, d);
    check_launch("rmsnorm_backward (gx)");
  }
  if (gw) column_sums(WeightGradTerm<T>{x, g, rstd, d}, rows, d, gw, false, "rmsnorm_backward (gw)");
}

namespace {
template <typename T>
NormKernels<T> norm_table() {
  return {&rmsnorm_forward<T>, &rmsnorm_backward<T>};
}
}  // namespace

void fill_norm(Backend& b) {
  b.f32.norm = norm_table<float>();
  b.f64.norm = norm_table<double>();
}

}  // namespace linspec::kernels::cuda
