// CUDA twins of kernels/linear_attention.h: the seed's augmented linear attention (METHOD.md §1, §3) on the GPU —
// chunked parallel form (forward and backward) and the recurrent decode step. Same layouts, semantics and signatures
// as the CPU kernels; every pointer is device memory, including dconv_w, dlambda_local and dlambda_global (the
// lambdas themselves are host scalars). head_dim ≤ 128; any group size G and tap count C.
//
// Forward: per-group states S_g (outer-product kernel + exclusive scan over groups), then one block per (query head,
// tile of ≤ 64 rows inside a group) computes λl·local + λg·Q̂ S_g with the G×G score tile kept in registers, and a
// separate pass adds the causal conv. Backward: per-kv-head W_g = Σ_heads Q̂_gᵀ dO_g turned into D_g = λg Σ_{g'>g} W_g'
// by a reverse scan, then a query-owned pass (dq) and a key-owned pass (dk, dv, summed over the GQA group) — no
// atomics, deterministic — and the conv gradients.
#pragma once
#include <cstdint>

#include "kernels/linear_attention.h"

namespace linspec::kernels::cuda {

using cpu::AugBranches;
using cpu::AugDims;
template <typename T>
using AugStateRef = cpu::AugStateRef<T>;

template <typename T>
void l2_normalize_rows(const T* x, T* xhat, T* rinv, int64_t rows, int64_t d, T eps);

template <typename T>
void aug_group_states(const AugDims& dm, const T* k, const T* v, T* states);

template <typename T>
void aug_forward(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                 const T* conv_w, T lambda_local, T lambda_global, T* out, T* local_out = nullptr,
                 T* global_out = nullptr, T* conv_out = nullptr);

template <typename T>
void aug_backward(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                  const T* conv_w, T lambda_local, T lambda_global, const T* dout, T* dq, T* dk, T* dv, T* dconv_w,
                  T* dlambda_local, T* dlambda_global);

// Recurrent form (kernels/cuda/linear_attention_decode.cu); st's tensors are device memory, st.pos is host state.
template <typename T>
void aug_decode_step(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* qhat, const T* khat,
                     const T* v, const T* conv_w, T lambda_local, T lambda_global, T* out);

template <typename T>
void aug_absorb(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* khat, const T* v, int64_t n);

}  // namespace linspec::kernels::cuda
