// Flash-attention forward and FlashAttention-2 backward on the CPU (see kernels/attention.h).
// GCC tunes Intel targets for 256-bit vectors; these loops are FMA-bound and run ~2x faster with
// 512-bit ones (no effect on CPUs without AVX-512). Placed before the includes so every function in
// this file, inlined library code included, shares the same target options.
#pragma GCC target("prefer-vector-width=512")

#include "kernels/backend.h"
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "kernels/cpu/simd_math.h"
#include "kernels/cpu/tile_gemm.h"

namespace linspec::kernels::cpu {
namespace {

// Tiles of Kᵀ, Qᵀ and dOᵀ are GEMM operands. Each of `count` matrices [rows, cols] is stored as
// ceil(rows / tile) contiguous blocks [cols, tile] (block b holds rows [b·tile, b·tile + tile) transposed),
// so a tile operand is one dense block: a plain transpose would give it a row stride of `rows` floats,
// and with power-of-two lengths all its rows would collide in the same L1 sets.
// Below this many multiply-adds (B·Hq·T·S·d) a call runs on one thread: thread start-up and barriers
// would cost more than the work (the gradient checks make thousands of tiny calls).
constexpr int64_t kParallelMinWork = int64_t(1) << 18;

// Scratch arrays filled (or zeroed) by parallel loops, so not value-initialised on allocation.
template <typename T>
using Buffer = std::unique_ptr<T[]>;
template <typename T>
Buffer<T> uninitialized(int64_t n) {
  return std::make_unique_for_overwrite<T[]>(static_cast<size_t>(std::max<int64_t>(n, 1)));
}

template <typename T>
void parallel_zero(T* p, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel: n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) p[i] = T(0);
}

template <typename T>
Buffer<T> transpose_into_tiles(const T* in, int64_t count, int64_t rows, int64_t cols, int64_t tile) {
  const int64_t blocks = (rows + tile - 1) / tile, per_matrix = blocks * cols * tile;
  Buffer<T> out = uninitialized<T>(count * per_matrix);
#pragma omp parallel for schedule(static) if (count * per_matrix > (1 << 16))
  for (int64_t task = 0; task < count * blocks; ++task) {
    const int64_t mat = task / blocks, blk = task % blocks;
    const int64_t r0 = blk * tile, n = std::min(tile, rows - r0);
    const T* src = in + (mat * rows + r0) * cols;
    T* dst = out.get() + mat * per_matrix + blk * cols * tile;
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t r = 0; r < n; ++r) dst[c * tile + r] = src[r * cols + c];
      for (int64_t r = n; r < tile; ++r) dst[c * tile + r] = T(0);  // padding, never read
    }
  }
  return out;
}

// ---- forward ----

template <typename T>
struct ForwardScratch {
  std::vector<T> scores, acc, m, l;
  explicit ForwardScratch(const AttentionDims& a)
      : scores(a.block_q * a.block_k), acc(a.block_q * a.d), m(a.block_q), l(a.block_q) {}
};

// One query tile [i0, i0 + mq) of one head. kt is this head's Kᵀ in [d, block_k] tiles, v its V [S, d].
template <typename T>
void forward_tile(const AttentionDims& a, int64_t i0, const T* q, const T* kt, const T* v, T* out, T* lse,
                  ForwardScratch<T>& w) {
  const int64_t d = a.d, bk = a.block_k, off = a.s - a.t;
  const int64_t mq = std::min(a.block_q, a.t - i0);
  const int64_t kend = std::min(a.s, i0 + mq + off);  // one past the last key this tile's last row sees
  const T scale = static_cast<T>(a.scale);
  const T neg_inf = -std::numeric_limits<T>::infinity();
  T *sc = w.scores.data(), *acc = w.acc.data(), *m = w.m.data(), *l = w.l.data();
  std::fill(acc, acc + mq * d, T(0));
  std::fill(m, m + mq, neg_inf);
  std::fill(l, l + mq, T(0));

  for (int64_t j0 = 0; j0 < kend; j0 += bk) {
    const int64_t nk = std::min(bk, kend - j0);
    tile::gemm(mq, nk, d, q + i0 * d, d, 1, kt + j0 * d, bk, sc, bk, false);  // raw scores Q Kᵀ
    for (int64_t ii = 0; ii < mq; ++ii) {
      T* row = sc + ii * bk;
      const int64_t seen = std::clamp<int64_t>(i0 + ii + off - j0 + 1, 0, nk);  // unmasked keys in this tile
      if (seen == 0) {
        std::fill(row, row + nk, T(0));
        continue;
      }
      const T m_new = std::max(m[ii], max_of(row, seen) * scale);
      const T alpha = m[ii] == neg_inf ? T(0) : exp_fast(m[ii] - m_new);  // rescales the earlier tiles
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < seen; ++j) {
        const T p = exp_fast(row[j] * scale - m_new);
        row[j] = p;
        sum += p;
      }
      std::fill(row + seen, row + nk, T(0));
      l[ii] = l[ii] * alpha + sum;
      m[ii] = m_new;
      if (alpha != T(1)) {
        T* arow = acc + ii * d;
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) arow[c] *= alpha;
      }
    }
    tile::gemm(mq, d, nk, sc, bk, 1, v + j0 * d, d, acc, d, true);  // acc += P V
  }
  for (int64_t ii = 0; ii < mq; ++ii) {  // every row sees key 0 (S >= T), so l > 0
    const T inv = T(1) / l[ii];
    T* orow = out + (i0 + ii) * d;
#pragma omp simd
    for (int64_t c = 0; c < d; ++c) orow[c] = acc[ii * d + c] * inv;
    lse[i0 + ii] = m[ii] + std::log(l[ii]);
  }
}

// ---- backward ----

// Per-head operands of the backward pass; dq/dk/dv point at buffers this task owns.
template <typename T>
struct BackwardHead {
  const T *q, *qt, *dout, *doutt, *lse, *delta;  // query side: [T, d], tiled Qᵀ, [T, d], tiled dOᵀ, [T], [T]
  const T *k, *v;                                // kv head: [S, d]
  T *dq, *dk, *dv;
};

// Key tile [j0, j0 + nk) against every query tile that sees it, in the transposed orientation (rows =
// keys) so that Pᵀ and dSᵀ feed dV, dK directly and dQ reads dSᵀ through strides.
template <typename T>
void backward_key_tile(const AttentionDims& a, int64_t j0, const BackwardHead<T>& h, T* st, T* dpt) {
  const int64_t d = a.d, Tq = a.t, bq = a.block_q, off = a.s - a.t;
  const int64_t nk = std::min(a.block_k, a.s - j0);
  const T scale = static_cast<T>(a.scale);
  const int64_t first_row = std::max<int64_t>(0, j0 - off);  // earliest query that sees key j0
  for (int64_t i0 = first_row / bq * bq; i0 < Tq; i0 += bq) {
    const int64_t mq = std::min(bq, Tq - i0);
    tile::gemm(nk, mq, d, h.k + j0 * d, d, 1, h.qt + i0 * d, bq, st, bq, false);  // Sᵀ = K Qᵀ (unscaled)
    for (int64_t jj = 0; jj < nk; ++jj) {
      T* row = st + jj * bq;
      const int64_t first = std::clamp<int64_t>(j0 + jj - off - i0, 0, mq);  // first query seeing this key
      std::fill(row, row + first, T(0));
      const T* lse = h.lse + i0;
#pragma omp simd
      for (int64_t ii = first; ii < mq; ++ii) row[ii] = exp_fast(row[ii] * scale - lse[ii]);  // Pᵀ
    }
    tile::gemm(nk, mq, d, h.v + j0 * d, d, 1, h.doutt + i0 * d, bq, dpt, bq, false);  // dPᵀ = V dOᵀ
    tile::gemm(nk, d, mq, st, bq, 1, h.dout + i0 * d, d, h.dv + j0 * d, d, true);  // dV += Pᵀ dO
    for (int64_t jj = 0; jj < nk; ++jj) {  // dSᵀ = Pᵀ ∘ (dPᵀ − D), with the score scale folded in
      const T* p = st + jj * bq;
      T* ds = dpt + jj * bq;
      const T* delta = h.delta + i0;
#pragma omp simd
      for (int64_t ii = 0; ii < mq; ++ii) ds[ii] = p[ii] * (ds[ii] - delta[ii]) * scale;
    }
    tile::gemm(nk, d, mq, dpt, bq, 1, h.q + i0 * d, d, h.dk + j0 * d, d, true);  // dK += dSᵀ Q
    tile::gemm(mq, d, nk, dpt, 1, bq, h.k + j0 * d, d, h.dq + i0 * d, d, true);  // dQ += dS K
  }
}

// Splits key tiles [0, nkt) into `parts` contiguous ranges of about equal work: under the causal mask
// key tile j is seen by the T - (j·bk - off) query rows after it.
std::vector<int64_t> balanced_key_ranges(const AttentionDims& a, int64_t nkt, int64_t parts) {
  const int64_t off = a.s - a.t;
  auto work = [&](int64_t j) { return static_cast<double>(a.t - std::max<int64_t>(0, j * a.block_k - off)); };
  double total = 0;
  for (int64_t j = 0; j < nkt; ++j) total += work(j);
  std::vector<int64_t> bounds{0};
  double acc = 0;
  for (int64_t j = 0; j < nkt && static_cast<int64_t>(bounds.size()) < parts; ++j) {
    acc += work(j);
    if (acc >= total * static_cast<double>(bounds.size()) / static_cast<double>(parts)) bounds.push_back(j + 1);
  }
  while (static_cast<int64_t>(bounds.size()) <= parts) bounds.push_back(nkt);  // (empty ranges are harmless)
  return bounds;
}

}  // namespace

template <typename T>
void causal_attention_forward(const AttentionDims& a, const T* q, const T* k, const T* v, T* out, T* lse) {
  const int64_t B = a.batch, Hq = a.heads_q, Hkv = a.heads_kv, Tq = a.t, S = a.s, d = a.d;
  if (B * Hq * Tq == 0) return;
  const int64_t group = Hq / Hkv;
  const Buffer<T> kt = transpose_into_tiles(k, B * Hkv, S, d, a.block_k);
  const int64_t kt_head = (S + a.block_k - 1) / a.block_k * a.block_k * d;
  const int64_t nqt = (Tq + a.block_q - 1) / a.block_q;
  const int64_t heads = B * Hq;
#pragma omp parallel if (heads * Tq * S * d > kParallelMinWork)
  {
    ForwardScratch<T> scratch(a);
    // Late query tiles see the most keys: hand them out first so the dynamic schedule ends evenly.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < heads * nqt; ++task) {
      const int64_t qtile = nqt - 1 - task / heads, bh = task % heads;
      const int64_t b = bh / Hq, g = (bh % Hq) / group;
      forward_tile(a, qtile * a.block_q, q + bh * Tq * d, kt.get() + (b * Hkv + g) * kt_head,
                   v + (b * Hkv + g) * S * d, out + bh * Tq * d, lse + bh * Tq, scratch);
    }
  }
}

template <typename T>
void causal_attention_backward(const AttentionDims& a, const T* q, const T* k, const T* v, const T* out,
                               const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const int64_t B = a.batch, Hq = a.heads_q, Hkv = a.heads_kv, Tq = a.t, S = a.s, d = a.d;
  const int64_t group = Hq / Hkv, heads = B * Hq;
  parallel_zero(dq, heads * Tq * d);
  parallel_zero(dk, B * Hkv * S * d);
  parallel_zero(dv, B * Hkv * S * d);
  if (heads * Tq == 0 || S == 0) return;

  // D_i = rowsum(dO ∘ O), and the transposed query-side operands.
  const bool parallel = heads * Tq * S * d > kParallelMinWork;
  Buffer<T> delta = uninitialized<T>(heads * Tq);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t r = 0; r < heads * Tq; ++r) {
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < d; ++c) acc += dout[r * d + c] * out[r * d + c];
    delta[r] = acc;
  }
  const Buffer<T> qt = transpose_into_tiles(q, heads, Tq, d, a.block_q);
  const Buffer<T> doutt = transpose_into_tiles(dout, heads, Tq, d, a.block_q);
  const int64_t qt_head = (Tq + a.block_q - 1) / a.block_q * a.block_q * d;

  // Tasks are (head, key range): each owns the dK/dV rows of its keys. With GQA each query head first
  // gets private dK/dV (summed over the group below); with several key ranges per head each range gets
  // a private dQ (summed below). Heads are split into ranges until there are ~8 tasks per thread, so the
  // dynamic schedule ends evenly, with at most 8 ranges to bound the private dQ copies.
  const int64_t nkt = (S + a.block_k - 1) / a.block_k;
  const int64_t threads = parallel ? omp_get_max_threads() : 1;
  const int64_t parts =
      threads > 1 ? std::clamp<int64_t>((8 * threads + heads - 1) / heads, 1, std::min<int64_t>(nkt, 8)) : 1;
  const std::vector<int64_t> ranges = balanced_key_ranges(a, nkt, parts);
  const int64_t dq_parts_size = parts > 1 ? parts * heads * Tq * d : 0;
  const int64_t dkv_heads_size = group > 1 ? 2 * heads * S * d : 0;
  Buffer<T> dq_parts = uninitialized<T>(dq_parts_size), dkv_heads = uninitialized<T>(dkv_heads_size);
  parallel_zero(dq_parts.get(), dq_parts_size);
  parallel_zero(dkv_heads.get(), dkv_heads_size);

#pragma omp parallel if (parallel)
  {
    std::vector<T> st(static_cast<size_t>(a.block_k * a.block_q)), dpt(st.size());
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < heads * parts; ++task) {
      const int64_t part = task / heads, bh = task % heads;
      const int64_t b = bh / Hq, g = (bh % Hq) / group;
      const int64_t qo = bh * Tq * d, kvo = (b * Hkv + g) * S * d;
      BackwardHead<T> h{q + qo,
                        qt.get() + bh * qt_head,
                        dout + qo,
                        doutt.get() + bh * qt_head,
                        lse + bh * Tq,
                        delta.get() + bh * Tq,
                        k + kvo,
                        v + kvo,
                        parts > 1 ? dq_parts.get() + part * heads * Tq * d + qo : dq + qo,
                        group > 1 ? dkv_heads.get() + bh * S * d : dk + kvo,
                        group > 1 ? dkv_heads.get() + (heads + bh) * S * d : dv + kvo};
      for (int64_t j = ranges[part]; j < ranges[part + 1]; ++j)
        backward_key_tile(a, j * a.block_k, h, st.data(), dpt.data());
    }
  }

  if (parts > 1) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t i = 0; i < heads * Tq * d; ++i) {
      T acc = 0;
      for (int64_t p = 0; p < parts; ++p) acc += dq_parts[p * heads * Tq * d + i];
      dq[i] = acc;
    }
  }
  if (group > 1) {
    const int64_t kv_size = B * Hkv * S * d, head_size = S * d;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t i = 0; i < kv_size; ++i) {
      const int64_t bg = i / head_size, e = i % head_size;  // kv head (b, g) <- query heads (b, g·group + r)
      const int64_t b = bg / Hkv, g = bg % Hkv;
      T sk = 0, sv = 0;
      for (int64_t r = 0; r < group; ++r) {
        const int64_t bh = b * Hq + g * group + r;
        sk += dkv_heads[bh * head_size + e];
        sv += dkv_heads[(heads + bh) * head_size + e];
      }
      dk[i] = sk;
      dv[i] = sv;
    }
  }
}

namespace {
template <typename T>
AttentionKernels<T> attention_table() {
  return {&causal_attention_forward<T>, &causal_attention_backward<T>};
}
}  // namespace

void fill_attention(Backend& b) {
  b.f32.attention = attention_table<float>();
  b.f64.attention = attention_table<double>();
}

}  // namespace linspec::kernels::cpu
