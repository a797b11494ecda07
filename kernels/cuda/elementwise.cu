// Elementwise loops and f32 <-> bf16 conversion on the GPU (see kernels/elementwise.h).
#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
struct AddInplace {
  T* acc;
  const T* x;
  __device__ void operator()(int64_t i) const { acc[i] += x[i]; }
};

template <typename T>
struct Axpy {
  T a;
  const T* x;
  T* y;
  __device__ void operator()(int64_t i) const { y[i] += a * x[i]; }
};

enum class Op { Add, Sub, Mul };

template <typename T, Op op>
struct Binary {
  const T *a, *b;
  T* out;
  int64_t nb;
  __device__ void operator()(int64_t i) const {
    const T x = a[i], y = b[nb == 0 ? 0 : i % nb];
    out[i] = op == Op::Add ? x + y : op == Op::Sub ? x - y : x * y;
  }
};

template <typename T>
struct Scale {
  const T* a;
  T s;
  T* out;
  __device__ void operator()(int64_t i) const { out[i] = a[i] * s; }
};

template <typename T>
struct Element {
  const T* x;
  int64_t cols;
  __device__ T operator()(int64_t r, int64_t j) const { return x[r * cols + j]; }
};

// Same rounding as linspec::f32_to_bf16 in core/dtype.h.
__device__ inline uint16_t round_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

struct ToBf16 {
  const float* src;
  uint16_t* dst;
  __device__ void operator()(int64_t i) const { dst[i] = round_bf16(src[i]); }
};

struct FromBf16 {
  const uint16_t* src;
  float* dst;
  __device__ void operator()(int64_t i) const { dst[i] = __uint_as_float(static_cast<uint32_t>(src[i]) << 16); }
};

template <typename T>
struct Square {
  const T* x;
  __device__ double operator()(int64_t i) const {
    const double v = x[i];
    return v * v;
  }
};

}  // namespace

template <typename T>
void add_inplace(T* acc, const T* x, int64_t n) {
  for_each(n, AddInplace<T>{acc, x}, "add_inplace");
}
template <typename T>
void axpy(T a, const T* x, T* y, int64_t n) {
  for_each(n, Axpy<T>{a, x, y}, "axpy");
}
template <typename T>
void add(const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  for_each(n, Binary<T, Op::Add>{a, b, out, nb}, "add");
}
template <typename T>
void sub(const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  for_each(n, Binary<T, Op::Sub>{a, b, out, nb}, "sub");
}
template <typename T>
void mul(const T* a, const T* b, T* out, int64_t n, int64_t nb) {
  for_each(n, Binary<T, Op::Mul>{a, b, out, nb}, "mul");
}
template <typename T>
void scale(const T* a, T s, T* out, int64_t n) {
  for_each(n, Scale<T>{a, s, out}, "scale");
}
template <typename T>
void reduce_leading(const T* x, T* out, int64_t n, int64_t nb) {
  if (nb <= 0) return;
  column_sums(Element<T>{x, nb}, n / nb, nb, out, false, "reduce_leading");
}

template <typename T>
struct Value {
  const T* x;
  __device__ double operator()(int64_t i) const { return x[i]; }
};

template <typename T>
double sum(const T* x, int64_t n) {
  return n > 0 ? reduce_to_host(Value<T>{x}, n, "sum") : 0.0;
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return n > 0 ? reduce_to_host(Square<T>{x}, n, "sum_squares") : 0.0;
}

template <typename T>
struct Dropout {
  const T* x;
  T* out;
  double p;
  uint64_t key;
  T keep;
  __device__ void operator()(int64_t i) const {
    out[i] = element_uniform(key, static_cast<uint64_t>(i), kDropoutLane) < p ? T(0) : x[i] * keep;
  }
};

template <typename T>
void dropout(const T* x, T* out, int64_t n, double p, uint64_t key) {
  for_each(n, Dropout<T>{x, out, p, key, static_cast<T>(1.0 / (1.0 - p))}, "dropout");
}

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) { for_each(n, ToBf16{src, dst}, "f32_to_bf16"); }
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) { for_each(n, FromBf16{src, dst}, "bf16_to_f32"); }

namespace {
template <typename T>
ElementwiseKernels<T> elementwise_table() {
  return {&add_inplace<T>,    &axpy<T>, &add<T>,         &sub<T>,     &mul<T>, &scale<T>,
          &reduce_leading<T>, &sum<T>,  &sum_squares<T>, &dropout<T>};
}
}  // namespace

void fill_elementwise(Backend& b) {
  b.f32.elementwise = elementwise_table<float>();
  b.f64.elementwise = elementwise_table<double>();
}

}  // namespace linspec::kernels::cuda
