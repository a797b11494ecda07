// Recurrent (decode) form of the augmented linear attention (docs/method.md §3.2): one token in, one out, with an
// O(1) state per kv head — S over complete groups, the current group's (k̂, v) buffer and a ring of the last C−1
// values of v. A group is folded into S right after the output of its last token, so the global term is exact at
// every position (including G−1, 2G−1, … where the seed's decoder dropped it).
#pragma GCC target("prefer-vector-width=512")  // as in aug_attention.cpp

#include <algorithm>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/aug_attention_common.h"
#include "kernels/aug_attention.h"

namespace linspec::kernels::cpu {
namespace {
using namespace aug_detail;

constexpr int64_t kParallelWork = 1 << 18;  // multiply-adds below which a parallel region does not pay
// One token's heads: each head's pass over its state is a few microseconds (strided rows of S and the buffer),
// so a fork/join pays from a handful of heads (SmolLM2: 9 heads, ~90K multiply-adds; serial it was ~30 µs/layer).
constexpr int64_t kParallelStepWork = 1 << 15;

// Writes token (k̂, v) at absolute position pos into the group buffer of one kv head.
template <typename T>
void buffer_token(const AugDims& dm, T* bk, T* bv, int64_t pos, const T* khat, const T* v) {
  if (!bk) return;
  const int64_t d = dm.head_dim, j = pos % dm.group;
  std::copy(khat, khat + d, bk + j * d);
  std::copy(v, v + d, bv + j * d);
}

// After the token at `pos` is buffered (and its output produced): push v into the conv ring and, when the token
// completes its group, fold the group into S (Σ k̂ vᵀ of the group first, then added, like the parallel form).
template <typename T>
void retire_token(const AugDims& dm, T* S, const T* bk, const T* bv, T* hist, int64_t pos, const T* v) {
  const int64_t d = dm.head_dim, G = dm.group;
  if (hist) std::copy(v, v + d, hist + (pos % (dm.taps - 1)) * d);
  if (S && pos % G == G - 1) {
    std::vector<T> U(d * d, T(0)), col(G);  // row a of K̂ᵀV = Σ_i k̂_i[a] v_i
    std::vector<const T*> rows(G);
    for (int64_t i = 0; i < G; ++i) rows[i] = bv + i * d;
    for (int64_t a = 0; a < d; ++a) {
      for (int64_t i = 0; i < G; ++i) col[i] = bk[i * d + a];
      add_weighted_rows(G, d, col.data(), rows.data(), U.data() + a * d);
    }
    for (int64_t e = 0; e < d * d; ++e) S[e] += U[e];
  }
}

// The decode step over dm.batch sequences; state_at(b) is sequence b's batch-1 state (a slice of one batch-B state,
// or a state of its own), each at its own position. Each (sequence, q head) pair runs the same operations whatever
// the batch, so every row equals the single-sequence step's bit for bit.
template <typename T, typename StateAt>
void decode_step_over(const AugDims& dm, AugBranches br, StateAt state_at, const T* qhat, const T* khat, const T* v,
                      const T* conv_w, const T* lambda_local_p, const T* lambda_global_p, T* out) {
  const T lambda_local = lambda_local_p ? *lambda_local_p : T(1), lambda_global = lambda_global_p ? *lambda_global_p : T(1);
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, d = dm.head_dim, G = dm.group, C = dm.taps;
  const int64_t rep = dm.rep(), buf = G * d, H = C - 1;
  for (int64_t b = 0; b < B; ++b) {
    const AugStateRef<T> st = state_at(b);
    for (int64_t h = 0; h < Hkv; ++h)
      buffer_token(dm, st.buf_k ? st.buf_k + h * buf : nullptr, st.buf_v ? st.buf_v + h * buf : nullptr, st.pos,
                   khat + (b * Hkv + h) * d, v + (b * Hkv + h) * d);
  }

#pragma omp parallel for schedule(static) if (B * Hq * d * (G + d + C) > kParallelStepWork)
  for (int64_t bh = 0; bh < B * Hq; ++bh) {
    const int64_t b = bh / Hq, h = bh % Hq, kv = h / rep;
    const AugStateRef<T> st = state_at(b);
    const int64_t pos = st.pos, j = pos % G;
    const T* q = qhat + bh * d;
    T* o = out + bh * d;
    std::fill(o, o + d, T(0));
    WeightedRows<T> wr(G + d + C);
    if (br.local) {
      const T *bk = st.buf_k + kv * buf, *bv = st.buf_v + kv * buf;
      for (int64_t i = 0; i <= j; ++i) wr.add(lambda_local * relu_sq(dot(q, bk + i * d, d)), bv + i * d);
    }
    if (br.global) {
      const T* S = st.S + kv * d * d;
      const T lg = lambda_global * static_cast<T>(dm.global_scale(pos / G));  // S holds the plain sum
      for (int64_t r = 0; r < d; ++r) wr.add(lg * q[r], S + r * d);
    }
    if (br.conv) {  // tap 0 is the current token, taps 1.. come from the ring
      const T* w = conv_w + h * C;
      wr.add(w[0], v + (b * Hkv + kv) * d);
      for (int64_t delta = 1; delta <= std::min(H, pos); ++delta)
        wr.add(w[delta], st.hist_v + (kv * H + (pos - delta) % H) * d);
    }
    wr.apply(d, o);
  }

  for (int64_t b = 0; b < B; ++b) {
    const AugStateRef<T> st = state_at(b);
    for (int64_t h = 0; h < Hkv; ++h)
      retire_token(dm, st.S ? st.S + h * d * d : nullptr, st.buf_k ? st.buf_k + h * buf : nullptr,
                   st.buf_v ? st.buf_v + h * buf : nullptr, st.hist_v ? st.hist_v + h * H * d : nullptr, st.pos,
                   v + (b * Hkv + h) * d);
  }
}

}  // namespace

template <typename T>
void aug_decode_step(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* qhat, const T* khat,
                     const T* v, const T* conv_w, const T* lambda_local, const T* lambda_global, T* out) {
  const int64_t d = dm.head_dim, Hkv = dm.kv_heads, buf = dm.group * d, H = dm.taps - 1;
  auto slice = [&](T* p, int64_t per_sequence) { return p ? p + per_sequence : nullptr; };
  decode_step_over<T>(
      dm, br,
      [&](int64_t b) {
        return AugStateRef<T>{slice(st.S, b * Hkv * d * d), slice(st.buf_k, b * Hkv * buf),
                              slice(st.buf_v, b * Hkv * buf), slice(st.hist_v, b * Hkv * H * d), st.pos};
      },
      qhat, khat, v, conv_w, lambda_local, lambda_global, out);
}

template <typename T>
void aug_decode_step_many(const AugDims& dm, AugBranches br, const AugStateRef<T>* states, const T* qhat,
                          const T* khat, const T* v, const T* conv_w, const T* lambda_local, const T* lambda_global,
                          T* out) {
  decode_step_over<T>(dm, br, [&](int64_t b) { return states[b]; }, qhat, khat, v, conv_w, lambda_local,
                      lambda_global, out);
}

template <typename T>
void aug_absorb(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* khat, const T* v, int64_t n) {
  const int64_t d = dm.head_dim, buf = dm.group * d, H = dm.taps - 1;
#pragma omp parallel for schedule(static) if (dm.batch * dm.kv_heads * n * d * d > kParallelWork)
  for (int64_t bk = 0; bk < dm.batch * dm.kv_heads; ++bk) {
    T* S = st.S ? st.S + bk * d * d : nullptr;
    T* bkp = st.buf_k ? st.buf_k + bk * buf : nullptr;
    T* bvp = st.buf_v ? st.buf_v + bk * buf : nullptr;
    T* hist = st.hist_v ? st.hist_v + bk * H * d : nullptr;
    for (int64_t t = 0; t < n; ++t) {
      const T *kt = khat + (bk * n + t) * d, *vt = v + (bk * n + t) * d;
      buffer_token(dm, bkp, bvp, st.pos + t, kt, vt);
      retire_token(dm, S, bkp, bvp, hist, st.pos + t, vt);
    }
  }
}

namespace {
template <typename T>
void fill(AugKernels<T>& k) {
  k.decode_step = &aug_decode_step<T>;
  k.decode_step_many = &aug_decode_step_many<T>;
  k.absorb = &aug_absorb<T>;
}
}  // namespace

void fill_aug_decode(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cpu
