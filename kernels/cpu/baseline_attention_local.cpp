// `yoso` (docs/method.md §2): grouped local attention with the angular weight (1 − arccos(q̂·k̂)/π)^τ, inside groups of G
// aligned to position 0, no denominator. Parallel form (one group = one chunk, so it is its own chunking) with
// backward, and the tree form over a committed prefix (a decode step is a one-node tree).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/baseline_attention_common.h"
#include "kernels/backend.h"

namespace linspec::kernels::baseline_attn {
namespace {
using detail::axpy;
using detail::dot;

constexpr double kClamp = 1e-6;  // keeps arccos' derivative finite

// Weight and its derivative with respect to the cosine x.
template <typename T>
struct AngularWeight {
  T tau;
  T value(T x) const {
    const T c = std::clamp(x, T(-1 + kClamp), T(1 - kClamp));
    return std::pow(T(1) - std::acos(c) / T(M_PI), tau);
  }
  T derivative(T x) const {
    if (x <= T(-1 + kClamp) || x >= T(1 - kClamp)) return T(0);
    const T base = T(1) - std::acos(x) / T(M_PI);
    return tau * std::pow(base, tau - T(1)) / (T(M_PI) * std::sqrt(T(1) - x * x));
  }
};

}  // namespace

template <typename T>
void yoso_forward(const LocalDims& dm, const T* qhat, const T* khat, const T* v, T* out) {
  const int64_t Hq = dm.q_heads, Tn = dm.seq, d = dm.head_dim, G = dm.group;
  const AngularWeight<T> wf{static_cast<T>(dm.tau)};
  const int64_t work = dm.batch * dm.q_heads * dm.seq * (G + 1) * dm.head_dim;
#pragma omp parallel for collapse(2) schedule(static) if (work > detail::kParallelMinWork)
  for (int64_t b = 0; b < dm.batch; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t qh = b * Hq + h, kvh = b * dm.kv_heads + h / dm.rep();
      const T* q = qhat + qh * Tn * d;
      const T* k = khat + kvh * Tn * d;
      const T* vv = v + kvh * Tn * d;
      for (int64_t t = 0; t < Tn; ++t) {
        T* o = out + (qh * Tn + t) * d;
        std::fill(o, o + d, T(0));
        for (int64_t s = G * (t / G); s <= t; ++s) axpy(wf.value(dot(q + t * d, k + s * d, d)), vv + s * d, o, d);
      }
    }
}

template <typename T>
void yoso_backward(const LocalDims& dm, const T* qhat, const T* khat, const T* v, const T* dout, T* dqhat, T* dkhat,
                   T* dv) {
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, Tn = dm.seq, d = dm.head_dim, G = dm.group;
  const int64_t rep = dm.rep();
  const AngularWeight<T> wf{static_cast<T>(dm.tau)};
  std::fill(dkhat, dkhat + B * Hkv * Tn * d, T(0));
  std::fill(dv, dv + B * Hkv * Tn * d, T(0));
  const int64_t work = B * Hq * Tn * (G + 1) * d;
  // One thread per (batch, kv head): it owns that head's key gradients across the query heads reading it.
#pragma omp parallel for collapse(2) schedule(static) if (work > detail::kParallelMinWork)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hk = 0; hk < Hkv; ++hk) {
      const int64_t kvh = b * Hkv + hk;
      const T* k = khat + kvh * Tn * d;
      const T* vv = v + kvh * Tn * d;
      T* dk = dkhat + kvh * Tn * d;
      T* dvv = dv + kvh * Tn * d;
      for (int64_t r = 0; r < rep; ++r) {
        const int64_t qh = b * Hq + hk * rep + r;
        const T* q = qhat + qh * Tn * d;
        T* dq = dqhat + qh * Tn * d;
        std::fill(dq, dq + Tn * d, T(0));
        for (int64_t t = 0; t < Tn; ++t) {
          const T* g = dout + (qh * Tn + t) * d;
          for (int64_t s = G * (t / G); s <= t; ++s) {
            const T x = dot(q + t * d, k + s * d, d);
            const T dx = dot(g, vv + s * d, d) * wf.derivative(x);
            axpy(dx, k + s * d, dq + t * d, d);
            axpy(dx, q + t * d, dk + s * d, d);
            axpy(wf.value(x), g, dvv + s * d, d);
          }
        }
      }
    }
}

template <typename T>
void yoso_tree_forward(const LocalDims& dm, const T* buf_k, const T* buf_v, int64_t pos, const TreeIndex& tree,
                       const T* qhat, const T* khat, const T* v, T* out) {
  const int64_t Hq = dm.q_heads, N = dm.seq, d = dm.head_dim, G = dm.group;
  const AngularWeight<T> wf{static_cast<T>(dm.tau)};
  const int64_t committed_group_start = G * (pos / G);  // buffer row j holds position committed_group_start + j
  const int64_t work = dm.batch * Hq * N * (G + tree.max_depth) * d;
#pragma omp parallel for collapse(2) schedule(static) if (work > detail::kParallelMinWork)
  for (int64_t b = 0; b < dm.batch; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t qh = b * Hq + h, kvh = b * dm.kv_heads + h / dm.rep();
      for (int64_t i = 0; i < N; ++i) {
        const T* q = qhat + (qh * N + i) * d;
        T* o = out + (qh * N + i) * d;
        std::fill(o, o + d, T(0));
        const int64_t p = pos + tree.depth[i], g0 = G * (p / G);
        // Committed keys of the node's group (only when it is the group the prefix ends in).
        for (int64_t s = g0; s < pos; ++s) {
          const int64_t row = kvh * G + (s - committed_group_start);
          axpy(wf.value(dot(q, buf_k + row * d, d)), buf_v + row * d, o, d);
        }
        // Path keys of the node's group.
        const int32_t* path = tree.path.data() + i * tree.max_depth;
        for (int64_t s = std::max(pos, g0); s <= p; ++s) {
          const int64_t row = kvh * N + path[s - pos];
          axpy(wf.value(dot(q, khat + row * d, d)), v + row * d, o, d);
        }
      }
    }
}

namespace {
template <typename T>
void fill(BaselineAttentionKernels<T>& k) {
  k.yoso_forward = &yoso_forward<T>;
  k.yoso_backward = &yoso_backward<T>;
  k.yoso_tree_forward = &yoso_tree_forward<T>;
}
}  // namespace

namespace cpu {
void fill_baseline_attention_yoso(Backend& b) {
  fill(b.f32.baseline_attn);
  fill(b.f64.baseline_attn);
}
}  // namespace cpu

}  // namespace linspec::kernels::baseline_attn
