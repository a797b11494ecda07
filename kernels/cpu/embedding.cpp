#include <omp.h>

#include <cstring>

#include "kernels/backend.h"

namespace linspec::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

template <typename T>
void embedding_forward(const T* table, const int32_t* ids, T* out, int64_t n, int64_t d) {
#pragma omp parallel for schedule(static) if (n * d > kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out + i * d, table + static_cast<int64_t>(ids[i]) * d, static_cast<size_t>(d) * sizeof(T));
}

template <typename T>
void embedding_backward(const T* grad_out, const int32_t* ids, T* grad_table, int64_t n, int64_t d, int64_t vocab,
                        bool overwrite) {
  // Rows are partitioned by id modulo the thread count: no two threads touch the same table row, so
  // no atomics or barriers, whole rows stay contiguous for SIMD, and repeated ids spread evenly. Every
  // thread scans all ids, which is cheap next to the row additions.
#pragma omp parallel if ((overwrite ? vocab : n) * d > kParallelMin)
  {
    const int64_t parts = omp_get_num_threads();
    const int64_t me = omp_get_thread_num();
    if (overwrite)
      for (int64_t r = me; r < vocab; r += parts)
        std::memset(grad_table + r * d, 0, static_cast<size_t>(d) * sizeof(T));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t id = ids[i];
      if (id % parts != me) continue;
      T* dst = grad_table + id * d;
      const T* src = grad_out + i * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) dst[j] += src[j];
    }
  }
}

int64_t first_invalid_id(const int32_t* ids, int64_t n, int64_t vocab, int64_t allowed) {
  for (int64_t i = 0; i < n; ++i)
    if ((ids[i] < 0 || ids[i] >= vocab) && ids[i] != allowed) return i;
  return -1;
}

namespace {
template <typename T>
EmbeddingKernels<T> embedding_table() {
  return {&embedding_forward<T>, &embedding_backward<T>, &first_invalid_id};
}
}  // namespace

void fill_embedding(Backend& b) {
  b.f32.embedding = embedding_table<float>();
  b.f64.embedding = embedding_table<double>();
}

}  // namespace linspec::kernels::cpu
