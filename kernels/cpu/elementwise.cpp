#include <algorithm>
#include <vector>

#include "kernels/backend.h"
#include "kernels/philox.h"

namespace linspec::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;

template <typename T, typename F>
void binary(const T* a, const T* b, T* out, int64_t n, int64_t nb, F f) {
  if (nb == n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
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
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

template <typename T>
void axpy(T a, const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
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
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
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

// Σ f(x_i) in double over fixed chunks, so the result is the same for any thread count.
template <typename T, typename F>
double chunked_sum(const T* x, int64_t n, F f) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    double acc = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) acc += f(static_cast<double>(x[i]));
    part[c] = acc;
  }
  double total = 0;
  for (double v : part) total += v;
  return total;
}

template <typename T>
double sum(const T* x, int64_t n) {
  return chunked_sum(x, n, [](double v) { return v; });
}
template <typename T>
double sum_squares(const T* x, int64_t n) {
  return chunked_sum(x, n, [](double v) { return v * v; });
}

template <typename T>
void dropout(const T* x, T* out, int64_t n, double p, uint64_t key) {
  const T keep = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > kParallelMin / 16)
  for (int64_t i = 0; i < n; ++i)
    out[i] = element_uniform(key, static_cast<uint64_t>(i), kDropoutLane) < p ? T(0) : x[i] * keep;
}

namespace {
template <typename T>
ElementwiseKernels<T> elementwise_table() {
  return {&add_inplace<T>, &axpy<T>,           &add<T>, &sub<T>,        &mul<T>,
          &scale<T>,       &reduce_leading<T>, &sum<T>, &sum_squares<T>, &dropout<T>};
}
}  // namespace

void fill_elementwise(Backend& b) {
  b.f32.elementwise = elementwise_table<float>();
  b.f64.elementwise = elementwise_table<double>();
}

}  // namespace linspec::kernels::cpu
