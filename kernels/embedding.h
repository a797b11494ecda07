// Embedding row gather and its scatter-add gradient (f32 / f64 tables).
// Ids are trusted here (the op in core/ops/embedding.cpp validates them).
#pragma once
#include <cstdint>

namespace linspec::kernels {

template <typename T>
struct EmbeddingKernels {
  // out[i, :] = table[ids[i], :] for i < n; rows of width d.
  void (*forward)(const T* table, const int32_t* ids, T* out, int64_t n, int64_t d);
  // grad_table[ids[i], :] += grad_out[i, :] for the `vocab` rows of grad_table; with `overwrite` the table is
  // zeroed first. Deterministic: each table row is accumulated in sequence order.
  void (*backward)(const T* grad_out, const int32_t* ids, T* grad_table, int64_t n, int64_t d, int64_t vocab,
                   bool overwrite);
  // Validation where the ids live: the index of the first id outside [0, vocab) that is not `allowed` (e.g. a
  // loss's ignore_index; pass a value outside the int32 range for none), or -1 when all are valid.
  int64_t (*first_invalid_id)(const int32_t* ids, int64_t n, int64_t vocab, int64_t allowed);
};

}  // namespace linspec::kernels
