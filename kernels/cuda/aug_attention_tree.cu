// Tree verification for the augmented linear attention on the GPU (docs/method.md §3.3; the CPU version, with the
// same case analysis, is kernels/cpu/aug_attention_tree.cpp). One block per (batch, query head, node): the block
// walks the node's root-to-node path up its parents, weighs the committed group buffer and the path tokens (local or
// global, by which group they fall in), then each thread sums its channels: buffer rows, path rows, q̂ᵀS, conv taps.
// Verification handles tens of nodes per step; this favours simplicity over speed.
#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

constexpr int kTreeThreads = 128;

template <typename T>
struct TreeArgs {
  const int32_t* parent;
  const T *qhat, *khat, *v, *w, *S, *buf_k, *buf_v, *hist;
  T* out;
  int64_t nodes, hq, hkv, d, G, taps, pos;
  const T *lambda_local, *lambda_global;  // device scalars (null: 1)
  bool local, global, conv, global_mean;
};

// The weight of one key row for query q̂ (in shared memory): relu(q̂·k̂)² · λl when `local`, else q̂·k̂ · λg'.
// One warp per row; lane 0 writes it.
template <typename T>
__device__ void weigh_row(const T* sq, const T* k, int64_t d, bool local, T lambda, T* weight) {
  const int lane = threadIdx.x & 31;
  T dot = 0;
  for (int64_t e = lane; e < d; e += 32) dot += sq[e] * k[e];
  dot = warp_sum(dot);
  if (lane == 0) *weight = local ? (dot > T(0) ? lambda * dot * dot : T(0)) : lambda * dot;
}

template <typename T>
__global__ void aug_tree_kernel(TreeArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* sq = reinterpret_cast<T*>(smem);  // q̂ [d]
  T* wb = sq + a.d;                    // committed buffer row weights [G]
  T* wp = wb + a.G;                    // path token weights [kMaxTreePath]
  __shared__ int32_t path[kMaxTreePath];
  __shared__ int64_t depth_s;
  const int64_t N = a.nodes, row = blockIdx.x, i = row % N, bh = row / N, h = bh % a.hq, b = bh / a.hq;
  const int64_t kv = b * a.hkv + h / (a.hq / a.hkv), d = a.d, G = a.G, P = a.pos;
  if (threadIdx.x == 0) {  // the path root first: walk up, then reverse
    int64_t n = 0;
    for (int32_t j = static_cast<int32_t>(i); j >= 0 && n < kMaxTreePath; j = a.parent[j]) path[n++] = j;
    for (int64_t x = 0; x < n / 2; ++x) {
      const int32_t t = path[x];
      path[x] = path[n - 1 - x];
      path[n - 1 - x] = t;
    }
    depth_s = n - 1;
  }
  for (int64_t e = threadIdx.x; e < d; e += blockDim.x) sq[e] = a.qhat[row * d + e];
  __syncthreads();
  const int64_t depth = depth_s, p = P + depth, g = p / G, gP = P / G, committed = P % G;
  const int64_t first_in_group = g * G - P > 0 ? g * G - P : 0;  // path index of the first token in node i's group
  const T ll = lambda_or_one(a.lambda_local);
  const T lg = lambda_or_one(a.lambda_global) * group_mean_scale<T>(a.global_mean, g, G);
  // Committed buffer rows belong to group gP: local when the node is still in it, global once the path has left it.
  const bool buffer_local = g == gP, buffer_on = buffer_local ? a.local : a.global;
  const T* node_k = a.khat + kv * N * d;
  const T* node_v = a.v + kv * N * d;
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
  if (buffer_on)
    for (int64_t r = warp; r < committed; r += warps)
      weigh_row(sq, a.buf_k + (kv * G + r) * d, d, buffer_local, buffer_local ? ll : lg, wb + r);
  for (int64_t x = warp; x <= depth; x += warps) {
    const bool local = x >= first_in_group;
    if (local ? a.local : a.global) weigh_row(sq, node_k + path[x] * d, d, local, local ? ll : lg, wp + x);
  }
  __syncthreads();
  const int64_t H = a.taps - 1;
  for (int64_t e = threadIdx.x; e < d; e += blockDim.x) {
    T acc = 0;
    if (buffer_on)
      for (int64_t r = 0; r < committed; ++r) acc += wb[r] * a.buf_v[(kv * G + r) * d + e];
    for (int64_t x = 0; x <= depth; ++x)
      if (x >= first_in_group ? a.local : a.global) acc += wp[x] * node_v[path[x] * d + e];
    if (a.global) {
      const T* S = a.S + kv * d * d + e;
      for (int64_t r = 0; r < d; ++r) acc += (lg * sq[r]) * S[r * d];
    }
    if (a.conv) {  // tap δ reads position p − δ: from the path when ≥ P, else from the committed ring
      const T* w = a.w + h * a.taps;
      for (int64_t delta = 0; delta <= H && delta <= p; ++delta) {
        const int64_t src = p - delta;
        acc += w[delta] * (src >= P ? node_v[path[src - P] * d + e] : a.hist[(kv * H + src % H) * d + e]);
      }
    }
    a.out[row * d + e] = acc;
  }
}

template <typename T>
void aug_tree_forward(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const int32_t* parent,
                      const T* qhat, const T* khat, const T* v, const T* conv_w, const T* lambda_local,
                      const T* lambda_global, T* out) {
  const int64_t rows = dm.batch * dm.q_heads * dm.seq;
  if (rows == 0 || dm.head_dim == 0) return;
  TreeArgs<T> a{parent, qhat, khat, v, conv_w, st.S, st.buf_k, st.buf_v, st.hist_v, out, dm.seq, dm.q_heads,
                dm.kv_heads, dm.head_dim, dm.group, dm.taps, st.pos, lambda_local, lambda_global, br.local, br.global,
                br.conv, dm.global_mean};
  const size_t smem = sizeof(T) * (dm.head_dim + dm.group + kMaxTreePath);
  allow_shared_memory(aug_tree_kernel<T>, smem, "aug_tree_forward");
  aug_tree_kernel<T><<<static_cast<unsigned>(rows), kTreeThreads, smem, stream()>>>(a);
  check_launch("aug_tree_forward");
}

template <typename T>
void fill(AugKernels<T>& k) {
  k.tree_forward = &aug_tree_forward<T>;
}
}  // namespace

void fill_aug_tree(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cuda
