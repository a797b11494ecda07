// CUDA twin of kernels/attention.h: causal softmax attention with GQA, flash style (online softmax over key tiles in
// shared memory, no T×S matrix), FlashAttention-2 backward from the saved logsumexp. Same layouts and semantics as
// the CPU kernel; every pointer is device memory. dims.block_q / block_k are ignored (the GPU tiles are fixed:
// 64×64 for f32, 32×32 for f64). head_dim d ≤ 128.
// The backward is deterministic and atomic-free: one pass owns key tiles (dK, dV summed over the query heads of a GQA
// group inside the block), a second owns query tiles (dQ), each recomputing the probabilities it needs.
#pragma once
#include "kernels/attention.h"

namespace linspec::kernels::cuda {

using cpu::AttentionDims;

template <typename T>
void causal_attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, T* out, T* lse);

template <typename T>
void causal_attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* out,
                               const T* lse, const T* dout, T* dq, T* dk, T* dv);

}  // namespace linspec::kernels::cuda
