// Embedding row gather and its scatter-add gradient, templated on float / double.
// Ids are trusted here (the op in core/ops/embedding.cpp validates them).
#pragma once
#include <cstdint>

namespace linspec::kernels::cpu {

// out[i, :] = table[ids[i], :] for i < n; rows of width d.
template <typename T> void embedding_forward(const T* table, const int32_t* ids, T* out, int64_t n, int64_t d);
// grad_table[ids[i], :] += grad_out[i, :] for the `vocab` rows of grad_table; with `overwrite` the table
// is zeroed first (in the same parallel pass). Deterministic for a fixed thread count: each table row
// is owned by one thread and accumulated in sequence order.
template <typename T>
void embedding_backward(const T* grad_out, const int32_t* ids, T* grad_table, int64_t n, int64_t d, int64_t vocab,
                        bool overwrite);

}  // namespace linspec::kernels::cpu
