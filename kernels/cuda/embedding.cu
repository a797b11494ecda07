// Embedding gather / scatter-add on the GPU (see kernels/embedding.h).
#include <cub/device/device_radix_sort.cuh>

#include <stdexcept>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
struct Gather {
  const T* table;
  const int32_t* ids;
  T* out;
  int64_t d;
  __device__ void operator()(int64_t idx) const {
    const int64_t i = idx / d, j = idx % d;
    out[idx] = table[static_cast<int64_t>(ids[i]) * d + j];
  }
};

struct Iota {
  int32_t* v;
  __device__ void operator()(int64_t i) const { v[i] = static_cast<int32_t>(i); }
};

// One warp per sorted position; the warp at the start of a run of equal ids sums that run's rows in order.
template <typename T>
__global__ void scatter_runs_kernel(const T* grad_out, const int32_t* sorted_ids, const int32_t* order, T* grad_table,
                                    int64_t n, int64_t d) {
  const int64_t pos = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (pos >= n) return;
  const int32_t id = sorted_ids[pos];
  if (pos > 0 && sorted_ids[pos - 1] == id) return;
  int64_t end = pos + 1;
  while (end < n && sorted_ids[end] == id) ++end;
  T* dst = grad_table + static_cast<int64_t>(id) * d;
  for (int64_t j = lane; j < d; j += 32) {
    T acc = dst[j];
    for (int64_t r = pos; r < end; ++r) acc += grad_out[static_cast<int64_t>(order[r]) * d + j];
    dst[j] = acc;
  }
}

__global__ void first_invalid_kernel(const int32_t* ids, int64_t n, int64_t vocab, int64_t allowed,
                                     unsigned long long* first) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    if ((ids[i] < 0 || ids[i] >= vocab) && ids[i] != allowed) atomicMin(first, static_cast<unsigned long long>(i));
}

int64_t first_invalid_id(const int32_t* ids, int64_t n, int64_t vocab, int64_t allowed) {
  if (n <= 0) return -1;
  constexpr unsigned long long kNone = ~0ull;
  Scratch<unsigned long long> first(1);
  check(cudaMemcpy(first.get(), &kNone, sizeof kNone, cudaMemcpyHostToDevice), "first_invalid_id");
  first_invalid_kernel<<<grid_for(n), kThreads, 0, stream()>>>(ids, n, vocab, allowed, first.get());
  check_launch("first_invalid_id");
  unsigned long long h = kNone;
  check(cudaMemcpy(&h, first.get(), sizeof h, cudaMemcpyDeviceToHost), "first_invalid_id");
  return h == kNone ? -1 : static_cast<int64_t>(h);
}

int key_bits(int64_t vocab) {
  int bits = 1;
  while (bits < 31 && (int64_t(1) << bits) < vocab) ++bits;
  return bits;
}

}  // namespace

template <typename T>
void embedding_forward(const T* table, const int32_t* ids, T* out, int64_t n, int64_t d) {
  for_each(n * d, Gather<T>{table, ids, out, d}, "embedding_forward");
}

template <typename T>
void embedding_backward(const T* grad_out, const int32_t* ids, T* grad_table, int64_t n, int64_t d, int64_t vocab,
                        bool overwrite) {
  if (overwrite) check(cudaMemsetAsync(grad_table, 0, sizeof(T) * vocab * d, stream()), "embedding_backward");
  if (n <= 0 || d <= 0) return;
  if (n > INT32_MAX) throw std::invalid_argument("embedding_backward: more than 2^31 ids");
  Scratch<int32_t> positions(n), sorted_ids(n), order(n);
  for_each(n, Iota{positions.get()}, "embedding_backward (iota)");
  size_t temp_bytes = 0;
  check(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ids, sorted_ids.get(), positions.get(), order.get(),
                                        static_cast<int>(n), 0, key_bits(vocab), stream()),
        "embedding_backward (sort size)");
  Scratch<unsigned char> temp(static_cast<int64_t>(temp_bytes));
  check(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, ids, sorted_ids.get(), positions.get(), order.get(),
                                        static_cast<int>(n), 0, key_bits(vocab), stream()),
        "embedding_backward (sort)");
  const int threads = 256;
  const int64_t blocks = (n * 32 + threads - 1) / threads;
  scatter_runs_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream()>>>(grad_out, sorted_ids.get(), order.get(),
                                                                                grad_table, n, d);
  check_launch("embedding_backward (scatter)");
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

}  // namespace linspec::kernels::cuda
