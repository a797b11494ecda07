// Chunked parallel form of the hybrid kernel attention (see kernels/baseline_attention.h), forward and backward.
//
// Query t reads its linear keys s ≤ e = t − W as the state prefix P_j = Σ_{s < jC} fk_s v_sᵀ at the last chunk
// boundary jC ≤ e + 1 plus the (< C) intra-chunk keys jC .. e. The prefix is carried forward chunk by chunk, so
// no T×T matrix and no per-chunk state array exist: memory is O(F·d) per head on top of the inputs.
// The backward runs two sweeps: forward in t for ∂fq and the intra-chunk / window terms, then backward over the
// chunks with the suffix sum R_i = Σ_{queries whose prefix covers chunk i} fq ⊗ ∂num for ∂fk and ∂v.
#include "kernels/backend.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/baseline_attention_common.h"

namespace linspec::kernels::baseline_attn {
namespace {
using detail::add_outer;
using detail::axpy;
using detail::dot;
using detail::eval_point;
using detail::KeyRef;
using detail::PointEval;
using detail::PointOptions;

// One (batch, query head): pointers into the inputs and the scalar options.
template <typename T>
struct HeadView {
  const T *fq, *fk, *v, *q, *k;  // fq/fk [T, F], v/k [T, d] (its kv head), q [T, d]
  int64_t seq, d, F, C, W;
  bool normalize;
  T eps, scale, gamma;

  HeadView(const HybridDims& dm, const HybridInputs<T>& in, int64_t b, int64_t h) {
    const int64_t hk = h / dm.rep();
    seq = dm.seq, d = dm.head_dim, F = dm.features, C = dm.chunk, W = dm.window;
    normalize = dm.normalize;
    // With a window, den ≥ 1 (the max score contributes e⁰) and eps = 0 keeps m_t an exact no-op.
    eps = W > 0 ? T(0) : static_cast<T>(dm.eps), scale = static_cast<T>(dm.scale);
    gamma = W > 0 ? detail::sigmoid(in.mix_logit[h]) : T(1);
    const int64_t qh = b * dm.q_heads + h, kvh = b * dm.kv_heads + hk;
    fq = in.fq + qh * seq * F;
    fk = in.fk + qh * seq * F;
    v = in.v + kvh * seq * d;
    q = W > 0 ? in.q + qh * seq * d : nullptr;
    k = W > 0 ? in.k + kvh * seq * d : nullptr;
  }
  int64_t last_linear_key(int64_t t) const { return t - W; }             // < 0: no linear part
  int64_t prefix_end(int64_t t) const { return C * ((t - W + 1) / C); }  // keys < this come from the prefix state
};

template <typename T>
PointOptions<T> point_options(const HeadView<T>& hv) {
  return {hv.d, hv.F, hv.W, hv.scale, hv.gamma};
}

template <typename T>
void eval_query(const HeadView<T>& hv, int64_t t, const T* P, const T* Z, PointEval<T>& r) {
  const int64_t jb = hv.last_linear_key(t) >= 0 ? hv.prefix_end(t) : 0;
  auto keys = [&hv](int64_t s) {
    return KeyRef<T>{hv.W > 0 ? hv.k + s * hv.d : nullptr, hv.v + s * hv.d, hv.fk + s * hv.F};
  };
  eval_point(point_options(hv), hv.W > 0 ? hv.q + t * hv.d : nullptr, hv.fq + t * hv.F, t, P, Z, jb, keys, r);
}

// Multiply-adds of a forward pass (to decide whether to go parallel).
int64_t hybrid_work(const HybridDims& dm) {
  return dm.batch * dm.q_heads * dm.seq *
         (dm.features * dm.head_dim + (dm.chunk + dm.window) * (dm.features + dm.head_dim));
}

// Brings the prefix state up to keys < target (a chunk boundary), folding whole chunks.
template <typename T>
void advance_prefix(const HeadView<T>& hv, int64_t target, int64_t& folded, T* P, T* Z) {
  for (; folded < target; ++folded) {
    const T* f = hv.fk + folded * hv.F;
    add_outer(f, hv.v + folded * hv.d, P, hv.F, hv.d);
    axpy(T(1), f, Z, hv.F);
  }
}

}  // namespace

template <typename T>
void hybrid_forward(const HybridDims& dm, const HybridInputs<T>& in, T* out) {
  const int64_t BH = dm.batch * dm.q_heads;
#pragma omp parallel for schedule(dynamic, 1) if (hybrid_work(dm) > detail::kParallelMinWork)
  for (int64_t bh = 0; bh < BH; ++bh) {
    const HeadView<T> hv(dm, in, bh / dm.q_heads, bh % dm.q_heads);
    std::vector<T> P(hv.F * hv.d, T(0)), Z(hv.F, T(0));
    PointEval<T> r(hv.d, hv.W);
    int64_t folded = 0;
    T* o = out + bh * hv.seq * hv.d;
    for (int64_t t = 0; t < hv.seq; ++t) {
      if (hv.last_linear_key(t) >= 0) advance_prefix(hv, hv.prefix_end(t), folded, P.data(), Z.data());
      eval_query(hv, t, P.data(), Z.data(), r);
      const T inv = hv.normalize ? T(1) / (r.den + hv.eps) : T(1);
      for (int64_t i = 0; i < hv.d; ++i) o[t * hv.d + i] = r.num[i] * inv;
    }
  }
}

template <typename T>
void hybrid_backward(const HybridDims& dm, const HybridInputs<T>& in, const T* dout, T* dfq, T* dfk, T* dv, T* dq,
                     T* dk, T* dmix) {
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, Tn = dm.seq, d = dm.head_dim, F = dm.features;
  const int64_t W = dm.window, BH = B * Hq;
  // Key-side gradients per query head first (heads sharing a kv head would race), reduced at the end.
  std::vector<T> dv_q(BH * Tn * d, T(0)), dk_q(W > 0 ? BH * Tn * d : 0, T(0));
  std::vector<T> dgamma(BH, T(0));
  std::fill(dfq, dfq + BH * Tn * F, T(0));
  std::fill(dfk, dfk + BH * Tn * F, T(0));
  if (W > 0) std::fill(dq, dq + BH * Tn * d, T(0));

#pragma omp parallel for schedule(dynamic, 1) if (hybrid_work(dm) > detail::kParallelMinWork)
  for (int64_t bh = 0; bh < BH; ++bh) {
    const HeadView<T> hv(dm, in, bh / Hq, bh % Hq);
    std::vector<T> P(F * d, T(0)), Z(F, T(0));
    std::vector<T> g_num(d), g_lin(Tn * d, T(0)), g_lin_den(Tn, T(0));
    PointEval<T> r(d, W);
    T* dfq_h = dfq + bh * Tn * F;
    T* dfk_h = dfk + bh * Tn * F;
    T* dv_h = dv_q.data() + bh * Tn * d;
    T* dk_h = W > 0 ? dk_q.data() + bh * Tn * d : nullptr;
    T* dq_h = W > 0 ? dq + bh * Tn * d : nullptr;
    const T* go_h = dout + bh * Tn * d;

    // Sweep 1 (forward in t): recompute each query, then its ∂fq, the window terms and the intra-chunk terms.
    int64_t folded = 0;
    for (int64_t t = 0; t < Tn; ++t) {
      if (hv.last_linear_key(t) >= 0) advance_prefix(hv, hv.prefix_end(t), folded, P.data(), Z.data());
      eval_query(hv, t, P.data(), Z.data(), r);
      const T* go = go_h + t * d;
      T g_den = 0;
      if (hv.normalize) {
        const T inv = T(1) / (r.den + hv.eps);
        T go_dot_o = 0;
        for (int64_t i = 0; i < d; ++i) {
          g_num[i] = go[i] * inv;
          go_dot_o += go[i] * r.num[i] * inv;
        }
        g_den = -go_dot_o * inv;
      } else {
        std::copy(go, go + d, g_num.begin());
      }
      if (W > 0) {
        const T* qt = hv.q + t * d;
        for (int64_t s = r.lo; s <= t; ++s) {
          const T e = r.e[s - r.lo];
          const T da = e * (dot(g_num.data(), hv.v + s * d, d) + g_den) * hv.scale;
          axpy(da, hv.k + s * d, dq_h + t * d, d);
          axpy(da, qt, dk_h + s * d, d);
          axpy(e, g_num.data(), dv_h + s * d, d);
        }
      }
      if (r.last < 0) continue;
      if (W > 0) dgamma[bh] += std::exp(-r.m) * (dot(g_num.data(), r.lin_num.data(), d) + g_den * r.lin_den);
      T* gl = g_lin.data() + t * d;
      for (int64_t i = 0; i < d; ++i) gl[i] = r.cfac * g_num[i];
      const T gld = r.cfac * g_den;
      g_lin_den[t] = gld;
      const T* f = hv.fq + t * F;
      T* df = dfq_h + t * F;
      for (int64_t i = 0; i < F; ++i) df[i] += dot(P.data() + i * d, gl, d) + Z[i] * gld;
      for (int64_t s = r.jb; s <= r.last; ++s) {
        const T* fks = hv.fk + s * F;
        const T w = dot(f, fks, F);
        const T gw = dot(gl, hv.v + s * d, d) + gld;
        axpy(gw, fks, df, F);
        axpy(gw, f, dfk_h + s * F, F);
        axpy(w, gl, dv_h + s * d, d);
      }
    }

    // Sweep 2 (backward over chunks): keys of chunk i feed the prefix of every query with prefix_end > i·C.
    std::vector<T>& R = P;  // reuse: suffix sums Σ fq ⊗ ∂lin_num and Σ fq ∂lin_den
    std::vector<T>& Rz = Z;
    std::fill(R.begin(), R.end(), T(0));
    std::fill(Rz.begin(), Rz.end(), T(0));
    const int64_t chunks = (Tn + hv.C - 1) / hv.C;
    int64_t tp = Tn - 1;
    for (int64_t i = chunks - 1; i >= 0; --i) {
      const int64_t c0 = i * hv.C, c1 = std::min(Tn, c0 + hv.C);
      for (; tp >= 0 && hv.last_linear_key(tp) >= 0 && hv.prefix_end(tp) > c0; --tp) {
        add_outer(hv.fq + tp * F, g_lin.data() + tp * d, R.data(), F, d);
        axpy(g_lin_den[tp], hv.fq + tp * F, Rz.data(), F);
      }
      for (int64_t s = c0; s < c1; ++s) {
        const T* vs = hv.v + s * d;
        const T* fks = hv.fk + s * F;
        T* dfk_s = dfk_h + s * F;
        T* dv_s = dv_h + s * d;
        for (int64_t a = 0; a < F; ++a) {
          dfk_s[a] += dot(R.data() + a * d, vs, d) + Rz[a];
          axpy(fks[a], R.data() + a * d, dv_s, d);
        }
      }
    }
  }

  // Reduce the per-query-head key gradients onto the kv heads.
  const int64_t rep = dm.rep();
#pragma omp parallel for schedule(static) if (BH * Tn * d > detail::kParallelMinWork)
  for (int64_t bk = 0; bk < B * Hkv; ++bk) {
    const int64_t b = bk / Hkv, hk = bk % Hkv;
    T* dv_k = dv + bk * Tn * d;
    T* dk_k = W > 0 ? dk + bk * Tn * d : nullptr;
    std::fill(dv_k, dv_k + Tn * d, T(0));
    if (dk_k) std::fill(dk_k, dk_k + Tn * d, T(0));
    for (int64_t r = 0; r < rep; ++r) {
      const int64_t bh = b * Hq + hk * rep + r;
      axpy(T(1), dv_q.data() + bh * Tn * d, dv_k, Tn * d);
      if (dk_k) axpy(T(1), dk_q.data() + bh * Tn * d, dk_k, Tn * d);
    }
  }
  if (W > 0 && dmix) {
    for (int64_t h = 0; h < Hq; ++h) {
      T g = 0;
      for (int64_t b = 0; b < B; ++b) g += dgamma[b * Hq + h];
      const T s = detail::sigmoid(in.mix_logit[h]);
      dmix[h] = g * s * (T(1) - s);
    }
  }
}

namespace {
template <typename T>
void fill(BaselineAttentionKernels<T>& k) {
  k.hybrid_forward = &hybrid_forward<T>;
  k.hybrid_backward = &hybrid_backward<T>;
}
}  // namespace

namespace cpu {
void fill_baseline_attention_hybrid(Backend& b) {
  fill(b.f32.baseline_attn);
  fill(b.f64.baseline_attn);
}
}  // namespace cpu

}  // namespace linspec::kernels::baseline_attn
