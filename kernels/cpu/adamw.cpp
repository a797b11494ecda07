#include "kernels/backend.h"
#include <algorithm>
#include <cmath>
#include <immintrin.h>

namespace linspec::kernels::cpu {
namespace {
constexpr int64_t kChunk = 1 << 16;  // elements per work item: large enough to amortise scheduling

struct WorkItem {
  int32_t tensor;
  int64_t begin, end;
};

// Packed-float helpers: GCC will not vectorise sqrtf without -fno-math-errno (it keeps a scalar
// errno path), so the loop is written with intrinsics for the widest unit the build targets.
#if defined(__AVX512F__)
using vec = __m512;
constexpr int64_t kWidth = 16;
inline vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vec x) { _mm512_storeu_ps(p, x); }
inline vec vset(float x) { return _mm512_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }  // a b + c
inline vec vmul(vec a, vec b) { return _mm512_mul_ps(a, b); }
inline vec vdiv(vec a, vec b) { return _mm512_div_ps(a, b); }
// maskz form: same instruction, and avoids GCC 12's false -Wmaybe-uninitialized on _mm512_sqrt_ps.
inline vec vsqrt(vec a) { return _mm512_maskz_sqrt_ps(static_cast<__mmask16>(0xffff), a); }
#elif defined(__AVX2__) && defined(__FMA__)
using vec = __m256;
constexpr int64_t kWidth = 8;
inline vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vec x) { _mm256_storeu_ps(p, x); }
inline vec vset(float x) { return _mm256_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec vmul(vec a, vec b) { return _mm256_mul_ps(a, b); }
inline vec vdiv(vec a, vec b) { return _mm256_div_ps(a, b); }
inline vec vsqrt(vec a) { return _mm256_sqrt_ps(a); }
#else
constexpr int64_t kWidth = 0;  // scalar only
#endif

// One element: the reference form of the update (also the tail of the vector loop).
inline void update_one(const AdamWCoeffs& c, float& p, float g_in, float& m, float& v) {
  const float g = g_in * c.grad_scale;
  m = c.beta1 * m + (1.f - c.beta1) * g;
  v = c.beta2 * v + (1.f - c.beta2) * g * g;
  p = p * c.decay - c.step_size * m / (std::sqrt(v) * c.inv_sqrt_bc2 + c.eps);
}

// One contiguous range in a single fused pass: read p, g, m, v once, write p, m, v once.
void update_range(const AdamWTensor& t, int64_t begin, int64_t end) {
  const AdamWCoeffs c = t.c;
  int64_t i = begin;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  const vec b1 = vset(c.beta1), omb1 = vset(1.f - c.beta1), b2 = vset(c.beta2), omb2 = vset(1.f - c.beta2);
  const vec decay = vset(c.decay), neg_step = vset(-c.step_size), ibc2 = vset(c.inv_sqrt_bc2), eps = vset(c.eps);
  const vec gscale = vset(c.grad_scale);
  for (; i + kWidth <= end; i += kWidth) {
    const vec g = vmul(vload(t.grad + i), gscale);
    const vec m = vfma(b1, vload(t.m + i), vmul(omb1, g));
    const vec v = vfma(b2, vload(t.v + i), vmul(omb2, vmul(g, g)));
    vstore(t.m + i, m);
    vstore(t.v + i, v);
    const vec denom = vfma(vsqrt(v), ibc2, eps);
    vstore(t.param + i, vfma(neg_step, vdiv(m, denom), vmul(vload(t.param + i), decay)));
  }
#endif
  for (; i < end; ++i) update_one(c, t.param[i], t.grad[i], t.m[i], t.v[i]);
}
}  // namespace

void adamw_update(const std::vector<AdamWTensor>& tensors) {
  std::vector<WorkItem> work;
  for (size_t ti = 0; ti < tensors.size(); ++ti)
    for (int64_t b = 0; b < tensors[ti].n; b += kChunk)
      work.push_back({static_cast<int32_t>(ti), b, std::min(b + kChunk, tensors[ti].n)});
  const int64_t items = static_cast<int64_t>(work.size());
#pragma omp parallel for schedule(dynamic, 4) if (items > 1)
  for (int64_t w = 0; w < items; ++w) update_range(tensors[work[w].tensor], work[w].begin, work[w].end);
}

namespace {
}  // namespace

void fill_adamw(Backend& b) { b.adamw.update = &adamw_update; }

}  // namespace linspec::kernels::cpu
