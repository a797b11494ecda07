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

// Tree verification (speculative decoding): N draft nodes after a committed prefix of P cached keys. Node i attends
// to every committed key and to the nodes j with visible[i · N + j] != 0 (its ancestors and itself).
struct TreeAttentionDims {
  int64_t batch = 1, heads_q = 1, heads_kv = 1, prefix = 0, nodes = 0, d = 0;
  double scale = 1.0;
};

template <typename T>
struct AttentionKernels {
  // Fills out and lse (natural-log logsumexp of each query row's scaled scores).
  void (*causal_forward)(const AttentionDims& dims, const T* q, const T* k, const T* v, T* out, T* lse);
  // Writes (overwrites) dq, dk, dv from dout and the forward's out and lse.
  void (*causal_backward)(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* out, const T* lse,
                          const T* dout, T* dq, T* dk, T* dv);
  // q, out [B, Hq, N, d]; cache_k, cache_v [B, Hkv, P, d]; node_k, node_v [B, Hkv, N, d]; visible [N, N] (device
  // memory). Softmax accumulated in double.
  void (*tree_forward)(const TreeAttentionDims& dims, const T* q, const T* cache_k, const T* cache_v,
                       const T* node_k, const T* node_v, const int32_t* visible, T* out);
};

}  // namespace linspec::kernels
