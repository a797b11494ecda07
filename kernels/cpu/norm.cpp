#include "kernels/backend.h"
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace linspec::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 14;

template <typename T>
inline T sum_squares(const T* x, int64_t d) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < d; ++j) acc += x[j] * x[j];
  return acc;
}
}  // namespace

template <typename T>
void rmsnorm_forward(const T* x, const T* w, T eps, T* y, T* rstd, int64_t rows, int64_t d) {
#pragma omp parallel for schedule(static) if (rows * d > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    const T s = T(1) / std::sqrt(sum_squares(xr, d) / static_cast<T>(d) + eps);
    rstd[r] = s;
    // (x · rstd) · w in that order, as HF rounds it.
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] * s) * w[j];
  }
}

template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* g, T* gx, T* gw, int64_t rows, int64_t d) {
  const bool parallel = rows * d > kParallelMin;
  // gw is a sum over rows: each thread accumulates its rows into its own slice, then the slices are
  // added in thread order (deterministic for a fixed thread count, no atomics).
  const int64_t slots = parallel ? omp_get_max_threads() : 1;
  std::vector<T> partial(gw ? static_cast<size_t>(slots * d) : 0, T(0));
#pragma omp parallel if (parallel)
  {
    T* acc = gw ? partial.data() + static_cast<int64_t>(omp_get_thread_num()) * d : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * d;
      const T* gr = g + r * d;
      const T s = rstd[r];
      if (gx) {
        T dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < d; ++j) dot += gr[j] * w[j] * xr[j];
        const T c = dot * s * s * s / static_cast<T>(d);
        T* gxr = gx + r * d;
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) gxr[j] = s * w[j] * gr[j] - c * xr[j];
      }
      if (acc) {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) acc[j] += gr[j] * xr[j] * s;
      }
    }
  }
  if (!gw) return;
  std::copy_n(partial.data(), d, gw);
  for (int64_t t = 1; t < slots; ++t) {
    const T* p = partial.data() + t * d;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) gw[j] += p[j];
  }
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

}  // namespace linspec::kernels::cpu
