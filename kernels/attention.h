// Causal softmax attention with GQA, flash-attention style: keys are visited tile by tile with an
// online softmax, so no T×S matrix is ever stored; the backward recomputes probabilities per tile from
// the saved per-row logsumexp (FlashAttention-2). Row-major contiguous buffers:
//   q, out, dq [B, Hq, T, d];  k, v, dk, dv [B, Hkv, S, d];  lse [B, Hq, T].
// Query head h reads kv head h / (Hq / Hkv); query row t sees keys s <= t + (S - T), S >= T.
#pragma once
#include <cstdint>

namespace linspec::kernels {

struct AttentionDims {
  int64_t batch = 1, heads_q = 1, heads_kv = 1, t = 0, s = 0, d = 0;
  double scale = 1.0;
  // Tile sizes (rows of queries / keys per tile). 64 suits f32 on AVX-512; the gradient checks pass tiny
  // ones so that short sequences still cross tile boundaries.
  int64_t block_q = 64, block_k = 64;
};

template <typename T>
struct AttentionKernels {
  // Fills out and lse (natural-log logsumexp of each query row's scaled scores).
  void (*causal_forward)(const AttentionDims& dims, const T* q, const T* k, const T* v, T* out, T* lse);
  // Writes (overwrites) dq, dk, dv from dout and the forward's out and lse.
  void (*causal_backward)(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* out, const T* lse,
                          const T* dout, T* dq, T* dk, T* dv);
};

}  // namespace linspec::kernels
