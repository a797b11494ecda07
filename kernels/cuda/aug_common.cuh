// Pieces shared by the chunked aug kernels (aug_attention.cu, aug_attention_backward.cu; internal):
// group/tile bookkeeping, in-shared-memory L2 normalisation, transposed tile loads, the per-group outer-product
// kernel (K̂ᵀV group states in the forward, Q̂ᵀdO in the backward) and the exclusive scan over groups.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/row_tile.cuh"
#include "kernels/backend.h"

namespace linspec::kernels::cuda::detail {

// Rows per block tile (4 lanes per row) and rows per streamed tile.
template <typename T>
struct AugTiles {
  static constexpr int R = 64;
};
template <>
struct AugTiles<double> {
  static constexpr int R = 32;
};

// Tile x of a sequence cut into groups of G, each group cut into ⌈G/R⌉ tiles of R rows. Tiles never cross a group.
struct TilePos {
  int64_t g, t0, gs, ge;  // group, first row, group start, group end (exclusive, clamped to T)
  int rows;               // rows in this tile (0: past the end)
};

__host__ __device__ inline int64_t tiles_per_group(int64_t G, int R) { return (G + R - 1) / R; }

__device__ inline TilePos tile_pos(int64_t x, int64_t G, int64_t T, int R) {
  const int64_t tpg = tiles_per_group(G, R);
  TilePos p;
  p.g = x / tpg;
  p.gs = p.g * G;
  p.t0 = p.gs + (x % tpg) * R;
  p.ge = min(p.gs + G, T);
  p.rows = p.t0 < p.ge ? static_cast<int>(min(int64_t(R), p.ge - p.t0)) : 0;
  return p;
}

// Normalises the rows of a padded shared tile in place (row r by its 4 lanes, thread r·4 + part; the block must have
// 4 threads per tile row) and returns this row's 1 / sqrt(|x|² + eps).
template <typename T>
__device__ inline T normalize_tile_row(T* tile, int d, T eps) {
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  T* row = tile + r * (d + 1);
  T ss = 0;
  for (int e = part; e < d; e += kLanes) ss += row[e] * row[e];
  const T rinv = T(1) / sqrt(row_sum(ss) + eps);
  for (int e = part; e < d; e += kLanes) row[e] *= rinv;
  return rinv;
}

// tile[c][x] = src[x · d + c0 + c] for c < valid (zero for valid ≤ c < rows), x < d: a block of columns of a
// row-major d×d matrix, stored transposed with the padded stride.
template <typename T>
__device__ inline void load_tile_transposed(T* tile, const T* src, int rows, int valid, int d, int c0) {
  const int ld = d + 1;
  for (int idx = threadIdx.x; idx < rows * d; idx += blockDim.x) {
    const int x = idx / rows, c = idx - x * rows;
    tile[c * ld + x] = c < valid ? src[static_cast<int64_t>(x) * d + c0 + c] : T(0);
  }
}

// dx = rinv (dx̂ − x̂ (x̂ · dx̂)) for this lane's channels of one row (x̂ in shared memory); all lanes call it.
template <typename T>
__device__ inline void normalize_backward_row(T (&dxhat)[kAcc], const T* xhat_row, T rinv, int d, int part) {
  T proj = 0;
#pragma unroll
  for (int j = 0; j < kAcc; ++j)
    if (part + kLanes * j < d) proj += xhat_row[part + kLanes * j] * dxhat[j];
  proj = row_sum(proj);
#pragma unroll
  for (int j = 0; j < kAcc; ++j)
    if (part + kLanes * j < d) dxhat[j] = rinv * (dxhat[j] - xhat_row[part + kLanes * j] * proj);
}

// ---- per-group outer products: out[bk, g] = Σ_{r < nsum} X̂_{src(bk, r), g}ᵀ Y_{src(bk, r), g} (d × d) ----
// src(bk, r) = (bk / heads_out) · heads_out · nsum + (bk % heads_out) · nsum + r; X rows are L2-normalised.

template <typename T>
struct OuterArgs {
  const T *x, *y;
  T* out;
  int64_t heads_out, nsum, seq, group, groups, g_begin;
  int d;
  T eps;
};

constexpr int kOuterThreads = 256;
constexpr int kOuterTile = 8;  // each thread owns an 8×8 block of the d×d result (strided, for conflict-free reads)

template <typename T, int R>
__global__ void __launch_bounds__(kOuterThreads) outer_kernel(OuterArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sx = reinterpret_cast<T*>(smem);
  T* sy = sx + R * ld;
  const int64_t g = a.g_begin + blockIdx.x, bk = blockIdx.y;
  const int64_t gs = g * a.group, ge = min(gs + a.group, a.seq);
  const int tiles = (d + kOuterTile - 1) / kOuterTile;
  const int ta = threadIdx.x / tiles, te = threadIdx.x % tiles;
  const bool owner = threadIdx.x < tiles * tiles;
  T acc[kOuterTile][kOuterTile] = {};
  for (int64_t r = 0; r < a.nsum; ++r) {
    const int64_t src = (bk / a.heads_out) * a.heads_out * a.nsum + (bk % a.heads_out) * a.nsum + r;
    const T* x = a.x + src * a.seq * d;
    const T* y = a.y + src * a.seq * d;
    for (int64_t c0 = gs; c0 < ge; c0 += R) {
      const int n = static_cast<int>(min(int64_t(R), ge - c0));
      __syncthreads();
      load_tile(sx, x + c0 * d, R, n, d);
      load_tile(sy, y + c0 * d, R, n, d);
      __syncthreads();
      for (int row = threadIdx.x / 32; row < n; row += blockDim.x / 32) {  // one warp per row: x̂ = x / |x|
        T* xr = sx + row * ld;
        T ss = 0;
        for (int e = threadIdx.x & 31; e < d; e += 32) ss += xr[e] * xr[e];
        const T rinv = T(1) / sqrt(warp_sum(ss) + a.eps);
        for (int e = threadIdx.x & 31; e < d; e += 32) xr[e] *= rinv;
      }
      __syncthreads();
      if (!owner) continue;
      for (int i = 0; i < n; ++i) {
        T xa[kOuterTile], ye[kOuterTile];
#pragma unroll
        for (int u = 0; u < kOuterTile; ++u) {
          const int ai = ta + tiles * u, ei = te + tiles * u;
          xa[u] = ai < d ? sx[i * ld + ai] : T(0);
          ye[u] = ei < d ? sy[i * ld + ei] : T(0);
        }
#pragma unroll
        for (int u = 0; u < kOuterTile; ++u)
#pragma unroll
          for (int w = 0; w < kOuterTile; ++w) acc[u][w] += xa[u] * ye[w];
      }
    }
  }
  if (!owner) return;
  T* out = a.out + (bk * a.groups + g) * d * d;
#pragma unroll
  for (int u = 0; u < kOuterTile; ++u)
#pragma unroll
    for (int w = 0; w < kOuterTile; ++w) {
      const int ai = ta + tiles * u, ei = te + tiles * w;
      if (ai < d && ei < d) out[ai * d + ei] = acc[u][w];
    }
}

template <typename T>
void launch_outer(const OuterArgs<T>& a, int64_t count, int64_t heads, const char* what) {
  if (count <= 0 || heads <= 0) return;
  constexpr int R = AugTiles<T>::R;
  const size_t smem = sizeof(T) * 2 * R * (a.d + 1);
  allow_shared_memory(outer_kernel<T, R>, smem, what);
  outer_kernel<T, R><<<dim3(static_cast<unsigned>(count), static_cast<unsigned>(heads)), kOuterThreads, smem,
                       stream()>>>(a);
  check_launch(what);
}

// Exclusive scan over the groups of buf [heads, groups, dd], in place: forward S_g = m(g)·Σ_{g'<g} scale·U_g', or
// reverse D_g = Σ_{g'>g} scale·m(g')·W_g', with m = group_mean_scale(mean, ·, group) (the adjoint of the forward's
// factor). The entry that is last in scan order is never read (it may be uninitialised).
template <typename T>
struct GroupScan {
  T* buf;
  int64_t groups, dd;
  bool reverse;
  T scale;
  const T* scale_on_device = nullptr;  // when set, the scale is read here instead
  bool mean = false;
  int64_t group = 1;
  __device__ void operator()(int64_t idx) const {
    const int64_t head = idx / dd, e = idx % dd;
    T* base = buf + head * groups * dd + e;
    T run = 0;
    const T scale = scale_on_device ? *scale_on_device : this->scale;
    for (int64_t n = 0; n < groups; ++n) {
      const int64_t g = reverse ? groups - 1 - n : n;
      const T u = n + 1 < groups ? base[g * dd] : T(0);
      const T m = group_mean_scale<T>(mean, g, group);
      base[g * dd] = reverse ? run : m * run;
      run += reverse ? scale * m * u : scale * u;
    }
  }
};

inline void check_aug_dims(const AugDims& dm, const char* what) {
  if (dm.head_dim <= 0 || dm.head_dim > kMaxDim)
    throw std::invalid_argument(std::string(what) + ": CUDA kernel supports head_dim 1.." + std::to_string(kMaxDim));
  if (dm.kv_heads <= 0 || dm.q_heads % dm.kv_heads != 0 || dm.group <= 0 || dm.taps <= 0)
    throw std::invalid_argument(std::string(what) + ": needs q_heads % kv_heads == 0, group > 0, taps > 0");
  if (dm.batch * dm.q_heads > 65535) throw std::invalid_argument(std::string(what) + ": batch·heads above 65535");
}

}  // namespace linspec::kernels::cuda::detail
