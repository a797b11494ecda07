// Flash attention forward and backward on the GPU (see kernels/attention.h; thread layout in row_tile.cuh).
#include <stdexcept>
#include <string>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/row_tile.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

// Rows owned per block (R) and rows per streamed tile (C); 4·R threads.
template <typename T>
struct Tiles {
  static constexpr int R = 64, C = 64;
};
template <>
struct Tiles<double> {
  static constexpr int R = 32, C = 32;
};

template <typename T>
struct Args {
  const T *q, *k, *v, *out, *lse, *dout, *delta;
  T *o, *l, *dq, *dk, *dv;
  int64_t hq, hkv, t, s, off;  // off = S − T: query row i sees keys ≤ i + off
  int d;
  T scale;
  __host__ __device__ int64_t group() const { return hq / hkv; }
};

template <typename T, int R, int C>
__global__ void __launch_bounds__(kLanes* R) forward_kernel(Args<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sq = reinterpret_cast<T*>(smem);
  T* sk = sq + R * ld;
  T* sv = sk + C * ld;
  const int64_t bh = blockIdx.y, b = bh / a.hq, kvh = b * a.hkv + (bh % a.hq) / (a.hq / a.hkv);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * R;
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  const int64_t i = i0 + r;
  const T* k = a.k + kvh * a.s * d;
  const T* v = a.v + kvh * a.s * d;
  load_tile(sq, a.q + (bh * a.t + i0) * d, R, static_cast<int>(min(int64_t(R), a.t - i0)), d);

  T m = neg_inf<T>(), l = 0, acc[kAcc];
  zero(acc);
  const int64_t kend = min(a.s, i0 + R + a.off);
  for (int64_t j0 = 0; j0 < kend; j0 += C) {
    __syncthreads();
    const int nk = static_cast<int>(min(int64_t(C), a.s - j0));
    load_tile(sk, k + j0 * d, C, nk, d);
    load_tile(sv, v + j0 * d, C, nk, d);
    __syncthreads();
    T s[C / kLanes];
    row_dots(sq + r * ld, sk, d, part, s);
    T tile_max = neg_inf<T>();
#pragma unroll
    for (int jj = 0; jj < C / kLanes; ++jj) {
      const int64_t c = j0 + part + kLanes * jj;
      s[jj] = (i < a.t && c < a.s && c <= i + a.off) ? s[jj] * a.scale : neg_inf<T>();
      tile_max = max(tile_max, s[jj]);
    }
    const T m_new = max(m, row_max(tile_max));
    const T alpha = m == neg_inf<T>() ? T(0) : exp(m - m_new);  // rescales the earlier tiles
    T psum = 0;
#pragma unroll
    for (int jj = 0; jj < C / kLanes; ++jj) {
      s[jj] = s[jj] == neg_inf<T>() ? T(0) : exp(s[jj] - m_new);
      psum += s[jj];
    }
    l = l * alpha + row_sum(psum);
    m = m_new;
#pragma unroll
    for (int j = 0; j < kAcc; ++j) acc[j] *= alpha;
    accumulate_shuffled(acc, s, sv, d, part);
  }
  if (i < a.t) {  // every real row sees key 0 (S ≥ T), so l > 0
    store_row(a.o + (bh * a.t + i) * d, acc, d, part, T(1) / l);
    if (part == 0) a.l[bh * a.t + i] = m + log(l);
  }
}

// delta_i = Σ_c dO_ic · O_ic, one warp per row.
template <typename T>
__global__ void delta_kernel(const T* dout, const T* out, T* delta, int64_t rows, int d) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  T acc = 0;
  for (int c = lane; c < d; c += 32) acc += dout[row * d + c] * out[row * d + c];
  acc = warp_sum(acc);
  if (lane == 0) delta[row] = acc;
}

// dQ for a tile of R query rows: dQ_i = Σ_c dS_ic K_c with dS = P ∘ (dP − delta) · scale, P = exp(scale·QKᵀ − lse).
template <typename T, int R, int C>
__global__ void __launch_bounds__(kLanes* R) dq_kernel(Args<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sq = reinterpret_cast<T*>(smem);
  T* sdo = sq + R * ld;
  T* sk = sdo + R * ld;
  T* sv = sk + C * ld;
  const int64_t bh = blockIdx.y, b = bh / a.hq, kvh = b * a.hkv + (bh % a.hq) / (a.hq / a.hkv);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * R;
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  const int64_t i = i0 + r;
  const int nq = static_cast<int>(min(int64_t(R), a.t - i0));
  load_tile(sq, a.q + (bh * a.t + i0) * d, R, nq, d);
  load_tile(sdo, a.dout + (bh * a.t + i0) * d, R, nq, d);
  const T lse = i < a.t ? a.lse[bh * a.t + i] : T(0), delta = i < a.t ? a.delta[bh * a.t + i] : T(0);
  const T* k = a.k + kvh * a.s * d;
  const T* v = a.v + kvh * a.s * d;

  T acc[kAcc];
  zero(acc);
  const int64_t kend = min(a.s, i0 + R + a.off);
  for (int64_t j0 = 0; j0 < kend; j0 += C) {
    __syncthreads();
    const int nk = static_cast<int>(min(int64_t(C), a.s - j0));
    load_tile(sk, k + j0 * d, C, nk, d);
    load_tile(sv, v + j0 * d, C, nk, d);
    __syncthreads();
    T s[C / kLanes], dp[C / kLanes];
    row_dots(sq + r * ld, sk, d, part, s);
    row_dots(sdo + r * ld, sv, d, part, dp);
#pragma unroll
    for (int jj = 0; jj < C / kLanes; ++jj) {
      const int64_t c = j0 + part + kLanes * jj;
      const T p = (i < a.t && c < a.s && c <= i + a.off) ? exp(s[jj] * a.scale - lse) : T(0);
      s[jj] = p * (dp[jj] - delta) * a.scale;
    }
    accumulate_shuffled(acc, s, sk, d, part);
  }
  if (i < a.t) store_row(a.dq + (bh * a.t + i) * d, acc, d, part);
}

// dK, dV for a tile of R keys of one kv head, summed over the query heads of its GQA group and every query tile
// that sees the keys: dV_c = Σ_i P_ic dO_i, dK_c = Σ_i dS_ic Q_i.
template <typename T, int R, int C>
__global__ void __launch_bounds__(kLanes* R) dkdv_kernel(Args<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sk = reinterpret_cast<T*>(smem);
  T* sv = sk + R * ld;
  T* sq = sv + R * ld;
  T* sdo = sq + C * ld;
  T* slse = sdo + C * ld;
  T* sdelta = slse + C;
  const int64_t bk = blockIdx.y, b = bk / a.hkv, g = bk % a.hkv, group = a.group();
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * R;
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  const int64_t key = j0 + r;
  const int nk = static_cast<int>(min(int64_t(R), a.s - j0));
  load_tile(sk, a.k + (bk * a.s + j0) * d, R, nk, d);
  load_tile(sv, a.v + (bk * a.s + j0) * d, R, nk, d);

  T acc_k[kAcc], acc_v[kAcc];
  zero(acc_k);
  zero(acc_v);
  const int64_t first_query = max(int64_t(0), j0 - a.off);  // earliest query that sees key j0
  for (int64_t rr = 0; rr < group; ++rr) {
    const int64_t bh = b * a.hq + g * group + rr;
    for (int64_t i0 = first_query; i0 < a.t; i0 += C) {
      __syncthreads();
      const int nq = static_cast<int>(min(int64_t(C), a.t - i0));
      load_tile(sq, a.q + (bh * a.t + i0) * d, C, nq, d);
      load_tile(sdo, a.dout + (bh * a.t + i0) * d, C, nq, d);
      for (int c = threadIdx.x; c < C; c += blockDim.x) {
        slse[c] = c < nq ? a.lse[bh * a.t + i0 + c] : T(0);
        sdelta[c] = c < nq ? a.delta[bh * a.t + i0 + c] : T(0);
      }
      __syncthreads();
      T p[C / kLanes], ds[C / kLanes];
      row_dots(sk + r * ld, sq, d, part, p);    // Sᵀ = K Qᵀ
      row_dots(sv + r * ld, sdo, d, part, ds);  // dPᵀ = V dOᵀ
#pragma unroll
      for (int jj = 0; jj < C / kLanes; ++jj) {
        const int c = part + kLanes * jj;
        const int64_t qi = i0 + c;
        const T pv = (key < a.s && qi < a.t && key <= qi + a.off) ? exp(p[jj] * a.scale - slse[c]) : T(0);
        p[jj] = pv;
        ds[jj] = pv * (ds[jj] - sdelta[c]) * a.scale;
      }
      accumulate_shuffled(acc_v, p, sdo, d, part);
      accumulate_shuffled(acc_k, ds, sq, d, part);
    }
  }
  if (key < a.s) {
    store_row(a.dk + (bk * a.s + key) * d, acc_k, d, part);
    store_row(a.dv + (bk * a.s + key) * d, acc_v, d, part);
  }
}

template <typename T>
Args<T> make_args(const AttentionDims& dm, const char* what) {
  if (dm.d > kMaxDim || dm.d <= 0)
    throw std::invalid_argument(std::string(what) + ": CUDA kernel supports head_dim 1.." + std::to_string(kMaxDim));
  if (dm.heads_kv <= 0 || dm.heads_q % dm.heads_kv != 0 || dm.s < dm.t)
    throw std::invalid_argument(std::string(what) + ": needs heads_q % heads_kv == 0 and S >= T");
  if (dm.batch * dm.heads_q > 65535) throw std::invalid_argument(std::string(what) + ": batch·heads above 65535");
  Args<T> a{};
  a.hq = dm.heads_q, a.hkv = dm.heads_kv, a.t = dm.t, a.s = dm.s, a.off = dm.s - dm.t;
  a.d = static_cast<int>(dm.d);
  a.scale = static_cast<T>(dm.scale);
  return a;
}

}  // namespace

template <typename T>
void causal_attention_forward(const AttentionDims& dm, const T* q, const T* k, const T* v, T* out, T* lse) {
  if (dm.batch * dm.heads_q * dm.t == 0) return;
  constexpr int R = Tiles<T>::R, C = Tiles<T>::C;
  Args<T> a = make_args<T>(dm, "causal_attention_forward");
  a.q = q, a.k = k, a.v = v, a.o = out, a.l = lse;
  const size_t smem = sizeof(T) * (R + 2 * C) * (a.d + 1);
  allow_shared_memory(forward_kernel<T, R, C>, smem, "causal_attention_forward");
  const dim3 grid(static_cast<unsigned>((dm.t + R - 1) / R), static_cast<unsigned>(dm.batch * dm.heads_q));
  forward_kernel<T, R, C><<<grid, kLanes * R, smem, stream()>>>(a);
  check_launch("causal_attention_forward");
}

template <typename T>
void causal_attention_backward(const AttentionDims& dm, const T* q, const T* k, const T* v, const T* out,
                               const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const int64_t rows = dm.batch * dm.heads_q * dm.t, kv_elems = dm.batch * dm.heads_kv * dm.s * dm.d;
  if (rows == 0 || dm.s == 0) {
    if (rows) check(cudaMemsetAsync(dq, 0, sizeof(T) * rows * dm.d, stream()), "causal_attention_backward");
    if (kv_elems) {
      check(cudaMemsetAsync(dk, 0, sizeof(T) * kv_elems, stream()), "causal_attention_backward");
      check(cudaMemsetAsync(dv, 0, sizeof(T) * kv_elems, stream()), "causal_attention_backward");
    }
    return;
  }
  constexpr int R = Tiles<T>::R, C = Tiles<T>::C;
  Args<T> a = make_args<T>(dm, "causal_attention_backward");
  Scratch<T> delta(rows);
  delta_kernel<<<grid_for(rows * 32), kThreads, 0, stream()>>>(dout, out, delta.get(), rows, a.d);
  check_launch("causal_attention_backward (delta)");
  a.q = q, a.k = k, a.v = v, a.out = out, a.lse = lse, a.dout = dout, a.delta = delta.get();
  a.dq = dq, a.dk = dk, a.dv = dv;

  const size_t smem_q = sizeof(T) * (2 * R + 2 * C) * (a.d + 1);
  allow_shared_memory(dq_kernel<T, R, C>, smem_q, "causal_attention_backward (dq)");
  dq_kernel<T, R, C><<<dim3(static_cast<unsigned>((dm.t + R - 1) / R), static_cast<unsigned>(dm.batch * dm.heads_q)),
                       kLanes * R, smem_q, stream()>>>(a);
  check_launch("causal_attention_backward (dq)");

  const size_t smem_kv = sizeof(T) * ((2 * R + 2 * C) * (a.d + 1) + 2 * C);
  allow_shared_memory(dkdv_kernel<T, R, C>, smem_kv, "causal_attention_backward (dk, dv)");
  dkdv_kernel<T, R, C><<<dim3(static_cast<unsigned>((dm.s + R - 1) / R), static_cast<unsigned>(dm.batch * dm.heads_kv)),
                         kLanes * R, smem_kv, stream()>>>(a);
  check_launch("causal_attention_backward (dk, dv)");
}

namespace {
template <typename T>
AttentionKernels<T> attention_table() {
  return {&causal_attention_forward<T>, &causal_attention_backward<T>};
}
}  // namespace

void fill_attention(Backend& b) {
  b.f32.attention = attention_table<float>();
  b.f64.attention = attention_table<double>();
}

}  // namespace linspec::kernels::cuda
