#include "kernels/elementwise.h"

#include <vector>

namespace linspec::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;

template <typename T, typename F>
void binary(const T* a, const T* b, T* out, int64_t n, int64_t nb, F f) {
  if (nb == n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    return;
  }
  const int64_t rows = n / nb;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * nb;
    T* orow = out + r * nb;
#pragma omp simd
    for (int64_t j = 0; j < nb; ++j) orow[j] = f(ar[j], b[j]);
  }
}
}  // namespace

template <typename T>
void add_inplace(T* acc, const T* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

template <typename T>
void axpy(T a, const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <typename T>
void add(const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  binary(a, b, out, n, nb, [](T x, T y) { return x + y; });
}
template <typename T>
void sub(const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  binary(a, b, out, n, nb, [](T x, T y) { return x - y; });
}
template <typename T>
void mul(const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  binary(a, b, out, n, nb, [](T x, T y) { return x * y; });
}

template <typename T>
void scale(const T* a, T s, T* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * s;
}

template <typename T>
void reduce_leading(const T* x, T* out, int64_t n, int64_t nb) {
  const int64_t rows = n / nb;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t j = 0; j < nb; ++j) {
    T acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += x[r * nb + j];
    out[j] = acc;
  }
}

#define LINSPEC_INSTANTIATE(T)                                  \
  template void add_inplace<T>(T*, const T*, int64_t);          \
  template void axpy<T>(T, const T*, T*, int64_t);              \
  template void add<T>(const T*, const T*, T*, int64_t, int64_t); \
  template void sub<T>(const T*, const T*, T*, int64_t, int64_t); \
  template void mul<T>(const T*, const T*, T*, int64_t, int64_t); \
  template void scale<T>(const T*, T, T*, int64_t);             \
  template void reduce_leading<T>(const T*, T*, int64_t, int64_t);
LINSPEC_INSTANTIATE(float)
LINSPEC_INSTANTIATE(double)
#undef LINSPEC_INSTANTIATE

}  // namespace linspec::kernels::cpu
