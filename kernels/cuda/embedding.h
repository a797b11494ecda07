// CUDA twin of kernels/embedding.h: row gather and its scatter-add gradient (device buffers, f32 / f64).
#pragma once
#include <cstdint>

namespace linspec::kernels::cuda {

// out[i, :] = table[ids[i], :]
template <typename T> void embedding_forward(const T* table, const int32_t* ids, T* out, int64_t n, int64_t d);
// grad_table[ids[i], :] += grad_out[i, :] (zeroed first with `overwrite`). Deterministic: ids are sorted (stable
// radix sort), and each distinct id's rows are summed by one warp in sequence order, without atomics.
template <typename T>
void embedding_backward(const T* grad_out, const int32_t* ids, T* grad_table, int64_t n, int64_t d, int64_t vocab,
                        bool overwrite);

}  // namespace linspec::kernels::cuda
