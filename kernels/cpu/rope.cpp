#include "kernels/backend.h"
#include <cmath>

namespace linspec::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 14;
}

template <typename T>
void rope_default_inv_freq(double theta, int64_t d, T* inv_freq) {
  for (int64_t i = 0; i < d / 2; ++i)
    inv_freq[i] = T(1) / std::pow(static_cast<T>(theta), static_cast<T>(2 * i) / static_cast<T>(d));
}

template <typename T>
void rope_tables(const T* inv_freq, int64_t half, int64_t pos0, int64_t t, T* cos_t, T* sin_t) {
  // Thousands of libm calls per call (T · d/2): worth spreading over threads.
#pragma omp parallel for collapse(2) schedule(static) if (t * half > 4096)
  for (int64_t p = 0; p < t; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const T angle = static_cast<T>(pos0 + p) * inv_freq[i];
      cos_t[p * half + i] = std::cos(angle);
      sin_t[p * half + i] = std::sin(angle);
    }
}

template <typename T>
void rope_apply(const T* x, const T* cos_t, const T* sin_t, T* out, int64_t bh, int64_t t, int64_t d, bool inverse) {
  const int64_t half = d / 2;
  const T sign = inverse ? T(-1) : T(1);
#pragma omp parallel for collapse(2) schedule(static) if (bh * t * d > kParallelMin)
  for (int64_t b = 0; b < bh; ++b)
    for (int64_t p = 0; p < t; ++p) {
      const T* xr = x + (b * t + p) * d;
      T* orow = out + (b * t + p) * d;
      const T* c = cos_t + p * half;
      const T* s = sin_t + p * half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const T lo = xr[i], hi = xr[i + half], sn = sign * s[i];
        orow[i] = lo * c[i] - hi * sn;
        orow[i + half] = hi * c[i] + lo * sn;
      }
    }
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

}  // namespace linspec::kernels::cpu
