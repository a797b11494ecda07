// Small vector helpers shared by the baseline-linear-attention kernels. Internal to kernels/cpu.
#pragma once
#include "kernels/cpu/simd_math.h"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace linspec::kernels::baseline_attn::detail {

// Below this many multiply-adds a loop runs on one thread: decode steps and small trees are cheaper serial than
// paying for a parallel region.
constexpr int64_t kParallelMinWork = int64_t{1} << 16;

using ::linspec::kernels::cpu::simd::axpy;
using ::linspec::kernels::cpu::simd::dot;

template <typename T>
inline void zero(T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = T(0);
}

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// M [F, d] += a bᵀ for a [F], b [d]  (outer-product update of a state)
template <typename T>
inline void add_outer(const T* a, const T* b, T* M, int64_t F, int64_t d) {
  for (int64_t i = 0; i < F; ++i) axpy(a[i], b, M + i * d, d);
}

// y [d] += xᵀ M for x [F], M [F, d]  (state read-out φ(q)ᵀ S)
template <typename T>
inline void add_vec_mat(const T* x, const T* M, T* y, int64_t F, int64_t d) {
  for (int64_t i = 0; i < F; ++i) axpy(x[i], M + i * d, y, d);
}

// ---- one query of the hybrid attention (kernels/baseline_attention.h), shared by the parallel and tree forms ----
template <typename T>
struct PointOptions {
  int64_t d, F, W;
  T scale, gamma;
};

// Rows of key s: raw key (window part only), value and key features.
template <typename T>
struct KeyRef {
  const T *k, *v, *f;
};

// Everything the forward computes for one query, kept for its backward.
template <typename T>
struct PointEval {
  std::vector<T> e;        // window weights exp(a − m), index s − lo
  std::vector<T> lin_num;  // [d]  Σ (fq·fk) v over the linear keys
  std::vector<T> num;      // [d]
  T lin_den = 0, den = 0, m = 0, cfac = 1;
  int64_t lo = 0, last = -1, jb = 0;

  PointEval(int64_t d, int64_t W) : e(std::max<int64_t>(W, 1)), lin_num(d), num(d) {}
};

// Query at position t with raw q (window) and features fq. Linear keys s ≤ t − W are the state (P, Z), which
// covers keys < jb, plus keys jb .. t − W read through keys(s); window keys t − W < s ≤ t likewise.
template <typename T, typename Keys>
void eval_point(const PointOptions<T>& o, const T* q, const T* fq, int64_t t, const T* P, const T* Z, int64_t jb,
                Keys&& keys, PointEval<T>& r) {
  const int64_t d = o.d, F = o.F;
  std::fill(r.num.begin(), r.num.end(), T(0));
  std::fill(r.lin_num.begin(), r.lin_num.end(), T(0));
  r.den = 0, r.lin_den = 0, r.m = 0, r.cfac = 1;
  if (o.W > 0) {
    // Softmax window, stabilised by its max score m (which cancels against c = γ e^{−m} on the linear part).
    r.lo = std::max<int64_t>(0, t - o.W + 1);
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t s = r.lo; s <= t; ++s) {
      const T a = o.scale * dot(q, keys(s).k, d);
      r.e[s - r.lo] = a;
      m = std::max(m, a);
    }
    for (int64_t s = r.lo; s <= t; ++s) {
      const T e = std::exp(r.e[s - r.lo] - m);
      r.e[s - r.lo] = e;
      axpy(e, keys(s).v, r.num.data(), d);
      r.den += e;
    }
    r.m = m;
    r.cfac = o.gamma * std::exp(-m);
  }
  r.last = t - o.W;
  r.jb = jb;
  if (r.last < 0) return;
  add_vec_mat(fq, P, r.lin_num.data(), F, d);
  r.lin_den = dot(fq, Z, F);
  for (int64_t s = jb; s <= r.last; ++s) {
    const KeyRef<T> key = keys(s);
    const T w = dot(fq, key.f, F);
    axpy(w, key.v, r.lin_num.data(), d);
    r.lin_den += w;
  }
  axpy(r.cfac, r.lin_num.data(), r.num.data(), d);
  r.den += r.cfac * r.lin_den;
}

}  // namespace linspec::kernels::baseline_attn::detail
