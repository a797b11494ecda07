// The thread layout shared by the attention kernels (flash attention and the aug chunked form; internal).
//
// A block owns R rows (queries, or keys in the key-side backward passes) and streams tiles of C rows of the other
// side through shared memory. Each owned row has kLanes = 4 consecutive lanes of one warp; lane `part` of row r holds
//   * the row's scores against the streamed tile for columns c = part + 4·jj  (jj < C/4), and
//   * the row's d-wide accumulators for channels e = part + 4·j             (j < kMaxDim/4).
// Shared tiles store rows with a stride of d + 1 elements so that the 8 rows a warp reads at once fall in different
// banks. Weights held by other lanes of the same row are fetched with warp shuffles, so score tiles never go through
// shared memory.
#pragma once
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda::detail {

constexpr int kLanes = 4;
constexpr int kMaxDim = 128;                // head_dim limit of these kernels
constexpr int kAcc = kMaxDim / kLanes;      // accumulators per thread

// Cooperative copy of `rows` rows of width d (global, row stride d) into a padded shared tile; rows >= valid are
// zero-filled. All threads of the block take part.
template <typename T>
__device__ inline void load_tile(T* tile, const T* src, int rows, int valid, int d) {
  const int ld = d + 1;
  for (int idx = threadIdx.x; idx < rows * d; idx += blockDim.x) {
    const int r = idx / d, c = idx - r * d;
    tile[r * ld + c] = r < valid ? src[static_cast<int64_t>(r) * d + c] : T(0);
  }
}

// Sum over the 4 lanes of a row (all lanes of the warp must call it).
template <typename T>
__device__ inline T row_sum(T v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}

template <typename T>
__device__ inline T row_max(T v) {
  v = max(v, __shfl_xor_sync(0xffffffffu, v, 1));
  v = max(v, __shfl_xor_sync(0xffffffffu, v, 2));
  return v;
}

// out[jj] = a_row · tile[part + 4·jj] over d channels (a_row and tile in shared memory, stride d + 1).
template <typename T, int NC>
__device__ inline void row_dots(const T* a_row, const T* tile, int d, int part, T (&out)[NC]) {
  const int ld = d + 1;
#pragma unroll
  for (int jj = 0; jj < NC; ++jj) out[jj] = T(0);
  for (int k = 0; k < d; ++k) {
    const T a = a_row[k];
#pragma unroll
    for (int jj = 0; jj < NC; ++jj) out[jj] += a * tile[(part + kLanes * jj) * ld + k];
  }
}

// acc[j] += Σ_c w_c · tile[c][part + 4j] over the tile's C rows, where w_c = vals[c / 4] of lane c % 4 of this row
// (the layout row_dots produces). All lanes of the warp must call it.
template <typename T, int NC>
__device__ inline void accumulate_shuffled(T (&acc)[kAcc], const T (&vals)[NC], const T* tile, int d, int part) {
  const int ld = d + 1, base = (threadIdx.x & 31) & ~(kLanes - 1);
#pragma unroll
  for (int jj = 0; jj < NC; ++jj) {
#pragma unroll
    for (int q = 0; q < kLanes; ++q) {
      const T w = __shfl_sync(0xffffffffu, vals[jj], base + q);
      const T* row = tile + (kLanes * jj + q) * ld;
#pragma unroll
      for (int j = 0; j < kAcc; ++j)
        if (part + kLanes * j < d) acc[j] += w * row[part + kLanes * j];
    }
  }
}

// acc[j] += Σ_{c < rows} w[c] · tile[c][part + 4j], with the weights in shared memory (w is this row's own vector).
template <typename T>
__device__ inline void accumulate_from_shared(T (&acc)[kAcc], const T* w, const T* tile, int rows, int d, int part) {
  const int ld = d + 1;
  for (int c = 0; c < rows; ++c) {
    const T wc = w[c];
    const T* row = tile + c * ld;
#pragma unroll
    for (int j = 0; j < kAcc; ++j)
      if (part + kLanes * j < d) acc[j] += wc * row[part + kLanes * j];
  }
}

// Writes this lane's channels of a d-wide row: dst[part + 4j] = scale · acc[j].
template <typename T>
__device__ inline void store_row(T* dst, const T (&acc)[kAcc], int d, int part, T scale = T(1)) {
#pragma unroll
  for (int j = 0; j < kAcc; ++j)
    if (part + kLanes * j < d) dst[part + kLanes * j] = scale * acc[j];
}

template <typename T>
__device__ inline void zero(T (&acc)[kAcc]) {
#pragma unroll
  for (int j = 0; j < kAcc; ++j) acc[j] = T(0);
}

}  // namespace linspec::kernels::cuda::detail
