// Chunked parallel form of the seed's augmented linear attention: forward and backward (docs/method.md §1, §3.1).
//
// The global term reads the d×d group states S_g = Σ_{g'<g} K̂_{g'}ᵀ V_{g'}: they depend on k and v only, so they are
// computed once per kv head (aug_group_states, parallel over groups, then a prefix sum) and kept for the backward —
// the O((T/G)·d²) memory of the method. Per (batch, query head) the sequence is then walked one group of G tokens at
// a time: the intra-group part is a G×G product (never T×T). The backward is a single reverse sweep over the groups
// carrying the adjoint D_g = λg Σ_{g'>g} Q̂_{g'}ᵀ dO_{g'}, so every row of dq, dk, dv is written once. q̂ / k̂ are
// normalised per group on the fly (and their normalisation differentiated there); no normalised copy is stored.
//
// The products are cache-resident tiles, so they go through the register-blocked tile GEMM (a oneDNN call costs about
// as much as a 64³ product, and a cached oneDNN primitive must not run on several OpenMP threads at once).
#pragma GCC target("prefer-vector-width=512")  // FMA-bound loops: 512-bit vectors on AVX-512 CPUs (see tile_gemm.h)

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/aug_attention_common.h"
#include "kernels/cpu/tile_gemm.h"

namespace linspec::kernels::cpu {
namespace {
using namespace aug_detail;

constexpr int64_t kParallelWork = 1 << 18;  // multiply-adds below which a parallel region does not pay

// C (+)= op(A) · B with B and C row-major; A is [M, K] row-major (lda) or, with trans_a, stored [K, M] (lda).
template <typename T>
void mm(int64_t M, int64_t N, int64_t K, const T* a, int64_t lda, bool trans_a, const T* b, int64_t ldb, T* c,
        int64_t ldc, bool accumulate) {
  if (trans_a)
    tile::gemm(M, N, K, a, 1, lda, b, ldb, c, ldc, accumulate);
  else
    tile::gemm(M, N, K, a, lda, 1, b, ldb, c, ldc, accumulate);
}

// out [cols, rows] = scale · in [rows, cols]ᵀ, in 16×16 blocks so both sides stay within a few cache lines.
template <typename T>
void transpose(const T* in, int64_t rows, int64_t cols, T* out, T scale = T(1)) {
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = scale * in[r * cols + c];
    }
}

// x̂ rows of one group and their inverse norms.
template <typename T>
void normalize_group(const T* x, int64_t L, int64_t d, T eps, T* xhat, T* rinv) {
  for (int64_t r = 0; r < L; ++r) {
    const T* xr = x + r * d;
    rinv[r] = T(1) / std::sqrt(dot(xr, xr, d) + eps);
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) xhat[r * d + j] = xr[j] * rinv[r];
  }
}

// dx = rinv · (dx̂ − x̂ (x̂ · dx̂)) for L rows, written to dx (may alias dxhat).
template <typename T>
void normalize_group_backward(const T* xhat, const T* rinv, const T* dxhat, int64_t L, int64_t d, T* dx) {
  for (int64_t r = 0; r < L; ++r) {
    const T *xr = xhat + r * d, *gr = dxhat + r * d;
    const T proj = dot(xr, gr, d);
    T* o = dx + r * d;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) o[j] = rinv[r] * (gr[j] - xr[j] * proj);
  }
}

// Channels per register-resident accumulator in the conv loops: 64 floats are four independent 512-bit FMA chains,
// enough to hide the FMA latency.
constexpr int64_t kLanes = 64;

// y = Σ_{δ=0}^{taps} w[δ] x[δ·step]: a tap sum over rows of d channels (step = ±d), accumulated in registers.
template <typename T>
void tap_sum(const T* x, int64_t step, const T* w, int64_t taps, int64_t d, T* y) {
  int64_t e0 = 0;
  for (; e0 + kLanes <= d; e0 += kLanes) {  // fixed width: the accumulator lives in registers
    T acc[kLanes] = {};
    for (int64_t delta = 0; delta <= taps; ++delta) {
      const T* xr = x + delta * step + e0;
      const T wd = w[delta];
#pragma omp simd
      for (int64_t j = 0; j < kLanes; ++j) acc[j] += wd * xr[j];
    }
    for (int64_t j = 0; j < kLanes; ++j) y[e0 + j] = acc[j];
  }
  for (; e0 < d; ++e0) {
    T acc = 0;
    for (int64_t delta = 0; delta <= taps; ++delta) acc += w[delta] * x[delta * step + e0];
    y[e0] = acc;
  }
}

// conv_t = Σ_{δ=0}^{min(C−1, t)} w[δ] v_{t−δ}  (v is the head's [T, d] slice)
template <typename T>
void conv_row(const T* v, const T* w, int64_t t, int64_t C, int64_t d, T* y) {
  tap_sum(v + t * d, -d, w, std::min(C - 1, t), d, y);
}

// Masks a group's L×L scores to s ≤ i and applies relu².
template <typename T>
void relu_sq_causal(T* P, int64_t L) {
  for (int64_t i = 0; i < L; ++i) {
    T* row = P + i * L;
#pragma omp simd
    for (int64_t s = 0; s <= i; ++s) row[s] = relu_sq(row[s]);
    std::fill(row + i + 1, row + L, T(0));
  }
}

// Per-group scratch of one head's worker.
template <typename T>
struct GroupScratch {
  std::vector<T> qn, kn, rq, rk, kt, vt, P, M;  // q̂, k̂ rows, inverse norms, k̂ᵀ, vᵀ, two G×G tiles
  GroupScratch(int64_t G, int64_t d) : qn(G * d), kn(G * d), rq(G), rk(G), kt(G * d), vt(G * d), P(G * G), M(G * G) {}
};

template <typename T>
void forward_head(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states, const T* w,
                  T ll, T lg, T* out, T* local_out, T* global_out, T* conv_out) {
  const int64_t T_ = dm.seq, d = dm.head_dim, G = dm.group, C = dm.taps;
  const T eps = static_cast<T>(dm.eps);
  GroupScratch<T> s(std::min(G, T_), d);
  std::vector<T> loc(s.qn.size(), T(0)), glob(s.qn.size(), T(0)), cv(d, T(0));
  for (int64_t g = 0, t0 = 0; t0 < T_; ++g, t0 += G) {
    const int64_t L = std::min(G, T_ - t0), off = t0 * d;
    if (br.local || br.global) normalize_group(q + off, L, d, eps, s.qn.data(), s.rq.data());
    if (br.local) {
      normalize_group(k + off, L, d, eps, s.kn.data(), s.rk.data());
      transpose(s.kn.data(), L, d, s.kt.data());
      mm(L, L, d, s.qn.data(), d, false, s.kt.data(), L, s.P.data(), L, false);  // Q̂ K̂ᵀ
      relu_sq_causal(s.P.data(), L);
      mm(L, d, L, s.P.data(), L, false, v + off, d, loc.data(), d, false);
    }
    if (br.global) mm(L, d, d, s.qn.data(), d, false, states + g * d * d, d, glob.data(), d, false);  // Q̂ S_g
    const T a = br.local ? ll : T(0), b = br.global ? lg : T(0);
    for (int64_t r = 0; r < L; ++r) {
      const int64_t t = t0 + r;
      const T *lr = loc.data() + r * d, *gr = glob.data() + r * d;
      if (br.conv) conv_row(v, w, t, C, d, cv.data());
      T* o = out + t * d;
#pragma omp simd
      for (int64_t e = 0; e < d; ++e) o[e] = a * lr[e] + b * gr[e] + cv[e];
      if (local_out) std::copy(lr, lr + d, local_out + t * d);
      if (global_out) std::copy(gr, gr + d, global_out + t * d);
      if (conv_out) std::copy(cv.begin(), cv.end(), conv_out + t * d);
    }
  }
}

// Conv backward for rows [t0, t1) of a head: dv_s += Σ_δ w[δ] dO_{s+δ} and dw_sum[δ] += Σ_t dO_t · v_{t−δ}. The dot
// products run one δ at a time with register-resident partial sums over the (cache-hot) rows of the block.
template <typename T>
void conv_backward_rows(const T* v, const T* w, const T* dO, int64_t t0, int64_t t1, int64_t T_, int64_t C, int64_t d,
                        T* dv, double* dw_sum) {
  std::vector<T> row(d);
  for (int64_t s = t0; s < t1; ++s) {
    tap_sum(dO + s * d, d, w, std::min(C - 1, T_ - 1 - s), d, row.data());
    axpy(T(1), row.data(), dv + s * d, d);
  }
  for (int64_t delta = 0; delta < C && delta < t1; ++delta) {
    T acc[kLanes] = {};
    T tail = 0;
    for (int64_t t = std::max(t0, delta); t < t1; ++t) {
      const T *g = dO + t * d, *vs = v + (t - delta) * d;
      int64_t e0 = 0;
      for (; e0 + kLanes <= d; e0 += kLanes) {
#pragma omp simd
        for (int64_t j = 0; j < kLanes; ++j) acc[j] += g[e0 + j] * vs[e0 + j];
      }
      for (; e0 < d; ++e0) tail += g[e0] * vs[e0];
    }
    T block = tail;
    for (int64_t j = 0; j < kLanes; ++j) block += acc[j];
    dw_sum[delta] += block;
  }
}

// Per-head backward: dq, dk, dv ([T, d] each, this query head's share) and dw ([C]) are overwritten. One reverse
// sweep: W_g = Q̂_gᵀ dO_g is formed per group and folded into D after use, so D_g = λg Σ_{g'>g} scale(g')·W_{g'}
// needs no storage; the normalisation backward and the conv backward run while the group is hot.
template <typename T>
void backward_head(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states, const T* w,
                   T ll, T lg, const T* dO, T* dq, T* dk, T* dv, T* dw, T* dll, T* dlg) {
  const int64_t T_ = dm.seq, d = dm.head_dim, G = dm.group, C = dm.taps, dd = d * d;
  const int64_t groups = (T_ + G - 1) / G;
  const T eps = static_cast<T>(dm.eps);
  const bool attn = br.local || br.global;
  GroupScratch<T> s(std::min(G, T_), d);
  std::vector<T> D(br.global ? dd : 0, T(0)), W(D.size()), Xt(D.size()), dqn(s.qn.size());
  std::vector<double> dw_sum(C, 0.0);
  double acc_l = 0, acc_g = 0;

  for (int64_t g = groups - 1; g >= 0; --g) {
    const int64_t t0 = g * G, L = std::min(G, T_ - t0), off = t0 * d;
    const T *dOg = dO + off, *vg = v + off;
    T *dkg = dk + off, *dvg = dv + off;  // dk holds dk̂ until the normalisation backward below
    std::fill(dqn.begin(), dqn.begin() + L * d, T(0));
    std::fill(dkg, dkg + L * d, T(0));
    std::fill(dvg, dvg + L * d, T(0));
    if (attn) {
      normalize_group(q + off, L, d, eps, s.qn.data(), s.rq.data());
      normalize_group(k + off, L, d, eps, s.kn.data(), s.rk.data());
    }
    if (br.local) {
      transpose(s.kn.data(), L, d, s.kt.data());
      transpose(vg, L, d, s.vt.data());
      mm(L, L, d, s.qn.data(), d, false, s.kt.data(), L, s.P.data(), L, false);  // P = Q̂ K̂ᵀ
      mm(L, L, d, dOg, d, false, s.vt.data(), L, s.M.data(), L, false);          // dO Vᵀ
      for (int64_t i = 0; i < L; ++i) {
        T* a = s.P.data() + i * L;
        T* m = s.M.data() + i * L;
        T racc = 0;
#pragma omp simd reduction(+ : racc)
        for (int64_t j = 0; j <= i; ++j) {  // causal part; keys after i are zeroed below
          const T p = a[j] > T(0) ? a[j] : T(0), gm = m[j];
          racc += p * p * gm;         // dλl = Σ relu(P)² ⊙ dO Vᵀ
          a[j] = ll * p * p;          // λl·A, for dV = (λl A)ᵀ dO
          m[j] = T(2) * ll * gm * p;  // dP = λl (dO Vᵀ) ⊙ 2 relu(P)
        }
        std::fill(a + i + 1, a + L, T(0));
        std::fill(m + i + 1, m + L, T(0));
        acc_l += racc;
      }
      mm(L, d, L, s.M.data(), L, false, s.kn.data(), d, dqn.data(), d, true);  // dQ̂ += dP K̂
      mm(L, d, L, s.M.data(), L, true, s.qn.data(), d, dkg, d, true);          // dK̂ += dPᵀ Q̂
      mm(L, d, L, s.P.data(), L, true, dOg, d, dvg, d, true);                  // dV += λl Aᵀ dO
    }
    if (br.global) {
      const T* Sg = states + g * dd;
      mm(d, d, L, s.qn.data(), d, true, dOg, d, W.data(), d, false);  // W_g = Q̂_gᵀ dO_g
      acc_g += dot(W.data(), Sg, dd);                                 // dλg = Σ_g ⟨W_g, S_g⟩
      transpose(Sg, d, d, Xt.data(), lg);
      mm(L, d, d, dOg, d, false, Xt.data(), d, dqn.data(), d, true);  // dQ̂ += λg dO S_gᵀ
      if (g + 1 < groups) {
        transpose(D.data(), d, d, Xt.data());
        mm(L, d, d, vg, d, false, Xt.data(), d, dkg, d, true);          // dK̂ += V D_gᵀ
        mm(L, d, d, s.kn.data(), d, false, D.data(), d, dvg, d, true);  // dV += K̂ D_g
      }
      axpy(lg * static_cast<T>(dm.global_scale(g)), W.data(), D.data(), dd);  // S_g's scale reaches K̂, V of g' < g
    }
    if (attn) {
      normalize_group_backward(s.qn.data(), s.rq.data(), dqn.data(), L, d, dq + off);
      normalize_group_backward(s.kn.data(), s.rk.data(), dkg, L, d, dkg);
    } else {
      std::fill(dq + off, dq + off + L * d, T(0));
    }
    if (br.conv) conv_backward_rows(v, w, dO, t0, t0 + L, T_, C, d, dv, dw_sum.data());
  }
  *dll = static_cast<T>(acc_l);
  *dlg = static_cast<T>(acc_g);
  if (br.conv)
    for (int64_t delta = 0; delta < C; ++delta) dw[delta] = static_cast<T>(dw_sum[delta]);
}

// Reusable per-calling-thread buffer (the GQA partial gradients are large: keeping them avoids fresh page faults on
// every backward).
template <typename T>
T* reusable(int slot, int64_t n) {
  static thread_local std::vector<T> buffers[2];
  if (static_cast<int64_t>(buffers[slot].size()) < n) buffers[slot].resize(n);
  return buffers[slot].data();
}

}  // namespace

template <typename T>
void l2_normalize_rows(const T* x, T* xhat, T* rinv, int64_t rows, int64_t d, T eps) {
  normalize_group(x, rows, d, eps, xhat, rinv);
}

template <typename T>
void aug_group_states(const AugDims& dm, const T* k, const T* v, T* states) {
  const int64_t d = dm.head_dim, G = dm.group, T_ = dm.seq, dd = d * d, groups = dm.groups();
  const int64_t heads = dm.batch * dm.kv_heads, Td = T_ * d;
  const T eps = static_cast<T>(dm.eps);
  // U_g = K̂_gᵀ V_g for every group but the last (no later group reads it), in parallel...
#pragma omp parallel for schedule(static) if (heads * Td * d > kParallelWork)
  for (int64_t task = 0; task < heads * groups; ++task) {
    const int64_t hk = task / groups, g = task % groups, t0 = g * G, L = std::min(G, T_ - t0);
    T* U = states + task * dd;
    if (g + 1 == groups) continue;
    std::vector<T> kn(L * d), rk(L);
    normalize_group(k + hk * Td + t0 * d, L, d, eps, kn.data(), rk.data());
    mm(d, d, L, kn.data(), d, true, v + hk * Td + t0 * d, d, U, d, false);
  }
  // ...then an exclusive prefix sum per kv head: S_g = global_scale(g) · Σ_{g'<g} U_{g'}.
#pragma omp parallel for schedule(static) if (heads * groups * dd > kParallelWork)
  for (int64_t hk = 0; hk < heads; ++hk) {
    std::vector<T> run(dd, T(0));
    for (int64_t g = 0; g < groups; ++g) {
      T* U = states + (hk * groups + g) * dd;
      const bool last = g + 1 == groups;
      const T scale = static_cast<T>(dm.global_scale(g));
#pragma omp simd
      for (int64_t e = 0; e < dd; ++e) {
        const T u = last ? T(0) : U[e];
        U[e] = scale * run[e];
        run[e] += u;
      }
    }
  }
}

template <typename T>
void aug_forward(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                 const T* conv_w, const T* lambda_local_p, const T* lambda_global_p, T* out, T* local_out, T* global_out, T* conv_out) {
  const T lambda_local = lambda_local_p ? *lambda_local_p : T(1), lambda_global = lambda_global_p ? *lambda_global_p : T(1);
  const int64_t BH = dm.batch * dm.q_heads, Td = dm.seq * dm.head_dim, rep = dm.rep();
  const int64_t state_stride = dm.groups() * dm.head_dim * dm.head_dim;
  if (Td == 0) return;
#pragma omp parallel for schedule(dynamic, 1) if (BH * Td * (dm.group + dm.head_dim) > kParallelWork)
  for (int64_t bh = 0; bh < BH; ++bh) {
    const int64_t b = bh / dm.q_heads, h = bh % dm.q_heads, kv = b * dm.kv_heads + h / rep;
    auto at = [&](T* p) { return p ? p + bh * Td : nullptr; };
    forward_head(dm, br, q + bh * Td, k + kv * Td, v + kv * Td, br.global ? states + kv * state_stride : nullptr,
                 br.conv ? conv_w + h * dm.taps : nullptr, lambda_local, lambda_global, out + bh * Td, at(local_out),
                 at(global_out), at(conv_out));
  }
}

template <typename T>
void aug_backward(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                  const T* conv_w, const T* lambda_local_p, const T* lambda_global_p, const T* dout, T* dq, T* dk, T* dv, T* dconv_w,
                  T* dlambda_local, T* dlambda_global) {
  const T lambda_local = lambda_local_p ? *lambda_local_p : T(1), lambda_global = lambda_global_p ? *lambda_global_p : T(1);
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, C = dm.taps, rep = dm.rep();
  const int64_t BH = B * Hq, Td = dm.seq * dm.head_dim;
  const int64_t state_stride = dm.groups() * dm.head_dim * dm.head_dim;
  // With GQA several query heads write the same kv head: each query head gets its own dk / dv, reduced after.
  T* dk_base = rep > 1 ? reusable<T>(0, BH * Td) : dk;
  T* dv_base = rep > 1 ? reusable<T>(1, BH * Td) : dv;
  std::vector<T> dw_part(BH * C, T(0)), dll_part(BH, T(0)), dlg_part(BH, T(0));
  if (Td > 0) {
#pragma omp parallel for schedule(dynamic, 1) if (BH * Td * (dm.group + dm.head_dim) > kParallelWork)
    for (int64_t bh = 0; bh < BH; ++bh) {
      const int64_t b = bh / Hq, h = bh % Hq, kv = b * Hkv + h / rep;
      backward_head(dm, br, q + bh * Td, k + kv * Td, v + kv * Td, br.global ? states + kv * state_stride : nullptr,
                    br.conv ? conv_w + h * C : nullptr, lambda_local, lambda_global, dout + bh * Td, dq + bh * Td,
                    dk_base + bh * Td, dv_base + bh * Td, dw_part.data() + bh * C, &dll_part[bh], &dlg_part[bh]);
    }
  }
  if (rep > 1) {
#pragma omp parallel for schedule(static) if (BH * Td > kParallelWork)
    for (int64_t bk = 0; bk < B * Hkv; ++bk) {
      const int64_t first = (bk / Hkv) * Hq + (bk % Hkv) * rep;  // first query head reading this kv head
      std::copy(dk_base + first * Td, dk_base + (first + 1) * Td, dk + bk * Td);
      std::copy(dv_base + first * Td, dv_base + (first + 1) * Td, dv + bk * Td);
      for (int64_t r = 1; r < rep; ++r) {
        axpy(T(1), dk_base + (first + r) * Td, dk + bk * Td, Td);
        axpy(T(1), dv_base + (first + r) * Td, dv + bk * Td, Td);
      }
    }
  }
  // Fixed-order reductions over (batch, head) keep the gradients deterministic.
  if (dconv_w) {
    std::fill(dconv_w, dconv_w + Hq * C, T(0));
    for (int64_t bh = 0; bh < BH; ++bh) axpy(T(1), dw_part.data() + bh * C, dconv_w + (bh % Hq) * C, C);
  }
  T sl = 0, sg = 0;
  for (int64_t bh = 0; bh < BH; ++bh) sl += dll_part[bh], sg += dlg_part[bh];
  *dlambda_local = sl;
  *dlambda_global = sg;
}

namespace {
template <typename T>
void fill(AugKernels<T>& k) {
  k.l2_normalize_rows = &l2_normalize_rows<T>;
  k.group_states = &aug_group_states<T>;
  k.forward = &aug_forward<T>;
  k.backward = &aug_backward<T>;
}
}  // namespace

void fill_aug_parallel(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cpu
