// Chunked aug linear attention, forward (see kernels/aug_attention.h; layout in row_tile.cuh).
#include "kernels/backend.h"
#include "kernels/cuda/aug_common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
struct ForwardArgs {
  const T *q, *k, *v, *states;
  T *out, *local_out, *global_out;
  int64_t hq, hkv, seq, group, groups;
  int d;
  T eps;
  const T *lambda_local, *lambda_global;  // device scalars (null: 1), used for enabled branches only
  bool local, global;
};

// One block per (query head, tile of R rows inside a group): out = λl·local + λg·Q̂ S_g for the tile's rows.
template <typename T, int R>
__global__ void __launch_bounds__(kLanes* R) forward_kernel(ForwardArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sq = reinterpret_cast<T*>(smem);
  T* sk = sq + R * ld;
  T* sv = sk + R * ld;
  const TilePos p = tile_pos(blockIdx.x, a.group, a.seq, R);
  if (p.rows == 0) return;
  const int64_t bh = blockIdx.y, b = bh / a.hq, kvh = b * a.hkv + (bh % a.hq) / (a.hq / a.hkv);
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  const int64_t i = p.t0 + r;
  const T* k = a.k + kvh * a.seq * d;
  const T* v = a.v + kvh * a.seq * d;

  load_tile(sq, a.q + (bh * a.seq + p.t0) * d, R, p.rows, d);
  __syncthreads();
  normalize_tile_row(sq, d, a.eps);
  __syncthreads();

  T loc[kAcc], glob[kAcc];
  zero(loc);
  zero(glob);
  if (a.local) {
    const int64_t kend = p.t0 + p.rows;  // keys of the group up to the tile's last row
    for (int64_t c0 = p.gs; c0 < kend; c0 += R) {
      const int nk = static_cast<int>(min(int64_t(R), kend - c0));
      __syncthreads();
      load_tile(sk, k + c0 * d, R, nk, d);
      load_tile(sv, v + c0 * d, R, nk, d);
      __syncthreads();
      normalize_tile_row(sk, d, a.eps);
      __syncthreads();
      T s[R / kLanes];
      row_dots(sq + r * ld, sk, d, part, s);
#pragma unroll
      for (int jj = 0; jj < R / kLanes; ++jj) {
        const int64_t key = c0 + part + kLanes * jj;
        const T x = s[jj] > T(0) ? s[jj] : T(0);
        s[jj] = (r < p.rows && key <= i) ? x * x : T(0);  // relu(q̂·k̂)², causal inside the group
      }
      accumulate_shuffled(loc, s, sv, d, part);
    }
  }
  if (a.global && p.g > 0) {  // Q̂ S_g, S_g streamed through shared memory R rows at a time
    const T* S = a.states + (kvh * a.groups + p.g) * d * d;
    for (int a0 = 0; a0 < d; a0 += R) {
      const int n = min(R, d - a0);
      __syncthreads();
      load_tile(sk, S + a0 * d, R, n, d);
      __syncthreads();
      accumulate_from_shared(glob, sq + r * ld + a0, sk, n, d, part);
    }
  }
  if (r >= p.rows) return;
  const int64_t row = (bh * a.seq + i) * d;
  T o[kAcc];
  const T coef_local = a.local ? lambda_or_one(a.lambda_local) : T(0);
  const T coef_global = a.global ? lambda_or_one(a.lambda_global) : T(0);
#pragma unroll
  for (int j = 0; j < kAcc; ++j) o[j] = coef_local * loc[j] + coef_global * glob[j];
  store_row(a.out + row, o, d, part);
  if (a.local_out) store_row(a.local_out + row, loc, d, part);
  if (a.global_out) store_row(a.global_out + row, glob, d, part);
}

// conv_t = Σ_{δ ≤ min(C−1, t)} w_h[δ] v_{t−δ}; out = (out +) conv, conv_out = conv.
template <typename T>
struct ConvForward {
  const T *v, *w;
  T *out, *conv_out;
  int64_t hq, hkv, seq, d, taps;
  bool accumulate;
  __device__ void operator()(int64_t idx) const {
    const int64_t e = idx % d, t = (idx / d) % seq, bh = idx / (d * seq);
    const int64_t h = bh % hq, kvh = (bh / hq) * hkv + h / (hq / hkv);
    const T* vh = v + kvh * seq * d + e;
    const T* wh = w + h * taps;
    T acc = 0;
    for (int64_t delta = 0; delta <= min(taps - 1, t); ++delta) acc += wh[delta] * vh[(t - delta) * d];
    if (conv_out) conv_out[idx] = acc;
    out[idx] = accumulate ? out[idx] + acc : acc;
  }
};

template <typename T>
__global__ void l2_normalize_kernel(const T* x, T* xhat, T* rinv, int64_t rows, int64_t d, T eps) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* xr = x + row * d;
  T ss = 0;
  for (int64_t e = lane; e < d; e += 32) ss += xr[e] * xr[e];
  const T ri = T(1) / sqrt(warp_sum(ss) + eps);
  if (lane == 0 && rinv) rinv[row] = ri;
  for (int64_t e = lane; e < d; e += 32) xhat[row * d + e] = xr[e] * ri;
}

}  // namespace

template <typename T>
void l2_normalize_rows(const T* x, T* xhat, T* rinv, int64_t rows, int64_t d, T eps) {
  if (rows <= 0) return;
  l2_normalize_kernel<<<grid_for(rows * 32), kThreads, 0, stream()>>>(x, xhat, rinv, rows, d, eps);
  check_launch("l2_normalize_rows");
}

template <typename T>
void aug_group_states(const AugDims& dm, const T* k, const T* v, T* states) {
  check_aug_dims(dm, "aug_group_states");
  const int64_t groups = dm.groups(), heads = dm.batch * dm.kv_heads, dd = dm.head_dim * dm.head_dim;
  if (groups == 0 || heads == 0) return;
  OuterArgs<T> a{k, v, states, dm.kv_heads, 1, dm.seq, dm.group, groups, 0, static_cast<int>(dm.head_dim),
                 static_cast<T>(dm.eps)};
  launch_outer(a, groups - 1, heads, "aug_group_states (K̂ᵀV)");  // the last group's sum is never read
  for_each(heads * dd, GroupScan<T>{states, groups, dd, false, T(1), nullptr, dm.global_mean, dm.group},
           "aug_group_states (scan)");
}

template <typename T>
void aug_forward(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                 const T* conv_w, const T* lambda_local, const T* lambda_global, T* out, T* local_out, T* global_out,
                 T* conv_out) {
  check_aug_dims(dm, "aug_forward");
  const int64_t BH = dm.batch * dm.q_heads, n = BH * dm.seq * dm.head_dim;
  if (n == 0) return;
  const bool attn = br.local || br.global;
  if (attn) {
    constexpr int R = AugTiles<T>::R;
    ForwardArgs<T> a{q, k, v, states, out, local_out, global_out, dm.q_heads, dm.kv_heads, dm.seq, dm.group,
                     dm.groups(), static_cast<int>(dm.head_dim), static_cast<T>(dm.eps),
                     lambda_local, lambda_global, br.local, br.global};
    const size_t smem = sizeof(T) * 3 * R * (a.d + 1);
    allow_shared_memory(forward_kernel<T, R>, smem, "aug_forward");
    const int64_t tiles = dm.groups() * tiles_per_group(dm.group, R);
    forward_kernel<T, R><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(BH)), kLanes * R, smem,
                           stream()>>>(a);
    check_launch("aug_forward");
  } else {
    if (local_out) check(cudaMemsetAsync(local_out, 0, sizeof(T) * n, stream()), "aug_forward");
    if (global_out) check(cudaMemsetAsync(global_out, 0, sizeof(T) * n, stream()), "aug_forward");
  }
  if (br.conv)
    for_each(n, ConvForward<T>{v, conv_w, out, conv_out, dm.q_heads, dm.kv_heads, dm.seq, dm.head_dim, dm.taps, attn},
             "aug_forward (conv)");
  else if (conv_out)
    check(cudaMemsetAsync(conv_out, 0, sizeof(T) * n, stream()), "aug_forward");
  if (!attn && !br.conv) check(cudaMemsetAsync(out, 0, sizeof(T) * n, stream()), "aug_forward");
}

namespace {
template <typename T>
void fill(AugKernels<T>& k) {
  k.l2_normalize_rows = &l2_normalize_rows<T>;
  k.group_states = &aug_group_states<T>;
  k.forward = &aug_forward<T>;
}
}  // namespace

void fill_aug_parallel(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cuda
