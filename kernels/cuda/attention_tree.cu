// Tree verification for softmax attention on the GPU (see kernels/attention.h). One block per (batch, query head,
// node): the scores of the row go to a scratch row in global memory (the committed prefix may be long), then the
// row's max and sum are block reductions and each warp accumulates the values of every warps-th key, summed at the
// end in a fixed order. Verification handles tens of nodes per step; this favours simplicity over speed.
#include <stdexcept>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

constexpr int kTreeThreads = 128;  // 4 warps
constexpr int kTreeWarps = kTreeThreads / 32;
constexpr int kMaxHeadDim = 256;

__device__ double block_max(double v) {
  __shared__ double partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  double m = -INFINITY;
  for (int w = 0; w < warps; ++w) m = fmax(m, partial[w]);
  return m;
}

template <typename T>
__global__ void tree_forward_kernel(TreeAttentionDims dims, const T* q, const T* cache_k, const T* cache_v,
                                    const T* node_k, const T* node_v, const int32_t* visible, double* scores, T* out) {
  const int64_t N = dims.nodes, P = dims.prefix, d = dims.d, S = P + N;
  const int64_t row = blockIdx.x, i = row % N, bh = row / N, h = bh % dims.heads_q, b = bh / dims.heads_q;
  const int64_t kvh = b * dims.heads_kv + h / (dims.heads_q / dims.heads_kv);
  const T *K = cache_k + kvh * P * d, *V = cache_v + kvh * P * d;
  const T *NK = node_k + kvh * N * d, *NV = node_v + kvh * N * d;
  __shared__ double qs[kMaxHeadDim];
  __shared__ double acc[kTreeWarps][kMaxHeadDim];
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) qs[c] = static_cast<double>(q[row * d + c]);
  __syncthreads();
  double* sc = scores + row * S;
  double mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
    double s = -INFINITY;
    if (j < P || visible[i * N + (j - P)]) {
      const T* kj = j < P ? K + j * d : NK + (j - P) * d;
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += qs[c] * static_cast<double>(kj[c]);
      s = dot * dims.scale;
    }
    sc[j] = s;
    mx = fmax(mx, s);
  }
  mx = block_max(mx);
  double denom = 0;
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
    const double e = sc[j] == -INFINITY ? 0.0 : exp(sc[j] - mx);
    sc[j] = e;
    denom += e;
  }
  denom = block_sum(denom);  // its barriers also make every thread's sc[] writes visible to the block
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t c = lane; c < d; c += 32) acc[warp][c] = 0;
  for (int64_t j = warp; j < S; j += kTreeWarps) {
    const double e = sc[j];
    if (e == 0) continue;
    const T* vj = j < P ? V + j * d : NV + (j - P) * d;
    for (int64_t c = lane; c < d; c += 32) acc[warp][c] += e * static_cast<double>(vj[c]);
  }
  __syncthreads();
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    double total = 0;
    for (int w = 0; w < kTreeWarps; ++w) total += acc[w][c];
    out[row * d + c] = static_cast<T>(total / denom);
  }
}

template <typename T>
void tree_forward(const TreeAttentionDims& dims, const T* q, const T* cache_k, const T* cache_v, const T* node_k,
                  const T* node_v, const int32_t* visible, T* out) {
  const int64_t rows = dims.batch * dims.heads_q * dims.nodes;
  if (rows <= 0 || dims.d <= 0) return;
  if (dims.d > kMaxHeadDim) throw std::invalid_argument("tree attention: head_dim above 256 on CUDA");
  Scratch<double> scores(rows * (dims.prefix + dims.nodes));
  tree_forward_kernel<T><<<static_cast<unsigned>(rows), kTreeThreads, 0, stream()>>>(
      dims, q, cache_k, cache_v, node_k, node_v, visible, scores.get(), out);
  check_launch("tree_attention_forward");
}

}  // namespace

void fill_attention_tree(Backend& b) {
  b.f32.attention.tree_forward = &tree_forward<float>;
  b.f64.attention.tree_forward = &tree_forward<double>;
}

}  // namespace linspec::kernels::cuda
