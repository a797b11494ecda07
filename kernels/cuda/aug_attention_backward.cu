// Chunked aug linear attention, backward (see kernels/aug_attention.h; layout in row_tile.cuh).
//
// With P = Q̂K̂ᵀ (causal inside a group), A = relu(P)², M = dO Vᵀ:
//   dQ̂ = (2λl M ∘ relu(P)) K̂ + λg dO S_gᵀ            (query-owned pass)
//   dK̂ = (2λl M ∘ relu(P))ᵀ Q̂ + V D_gᵀ,  dV = λl Aᵀ dO + K̂ D_g   (key-owned pass, summed over the GQA group)
//   with D_g = λg Σ_{g'>g} Σ_heads Q̂_{g'}ᵀ dO_{g'};  dλl = Σ A ∘ M,  dλg = Σ_g ⟨Σ_heads Q̂_gᵀ dO_g, S_g⟩,
// then the normalisation backward dx = rinv (dx̂ − x̂ (x̂·dx̂)) and the conv terms.
#include "kernels/backend.h"
#include "kernels/cuda/aug_common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

template <typename T>
struct BackwardArgs {
  const T *q, *k, *v, *states, *dout, *D;
  T *dq, *dk, *dv;
  double* partial_local;  // [B·Hq, tiles]: Σ A ∘ M of each dq block
  int64_t hq, hkv, seq, group, groups;
  int d;
  T eps;
  const T *lambda_local, *lambda_global;  // device scalars (null: 1)
  bool local, global;
};

// dq for one (query head, tile of R rows in a group).
template <typename T, int R>
__global__ void __launch_bounds__(kLanes* R) dq_kernel(BackwardArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sq = reinterpret_cast<T*>(smem);
  T* sdo = sq + R * ld;
  T* sk = sdo + R * ld;
  T* sv = sk + R * ld;
  const TilePos p = tile_pos(blockIdx.x, a.group, a.seq, R);
  const int64_t bh = blockIdx.y;
  if (p.rows == 0) {
    if (threadIdx.x == 0) a.partial_local[bh * gridDim.x + blockIdx.x] = 0;
    return;
  }
  const int64_t b = bh / a.hq, kvh = b * a.hkv + (bh % a.hq) / (a.hq / a.hkv);
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  const int64_t i = p.t0 + r;
  const T* k = a.k + kvh * a.seq * d;
  const T* v = a.v + kvh * a.seq * d;

  load_tile(sq, a.q + (bh * a.seq + p.t0) * d, R, p.rows, d);
  load_tile(sdo, a.dout + (bh * a.seq + p.t0) * d, R, p.rows, d);
  __syncthreads();
  const T rinv = normalize_tile_row(sq, d, a.eps);
  __syncthreads();

  T dqn[kAcc];
  zero(dqn);
  T local_sum = 0;
  if (a.local) {
    const int64_t kend = p.t0 + p.rows;
    for (int64_t c0 = p.gs; c0 < kend; c0 += R) {
      const int nk = static_cast<int>(min(int64_t(R), kend - c0));
      __syncthreads();
      load_tile(sk, k + c0 * d, R, nk, d);
      load_tile(sv, v + c0 * d, R, nk, d);
      __syncthreads();
      normalize_tile_row(sk, d, a.eps);
      __syncthreads();
      T s[R / kLanes], m[R / kLanes];
      row_dots(sq + r * ld, sk, d, part, s);   // P = Q̂ K̂ᵀ
      row_dots(sdo + r * ld, sv, d, part, m);  // M = dO Vᵀ
#pragma unroll
      for (int jj = 0; jj < R / kLanes; ++jj) {
        const int64_t key = c0 + part + kLanes * jj;
        const bool ok = r < p.rows && key <= i;
        const T x = s[jj] > T(0) ? s[jj] : T(0);
        local_sum += ok ? x * x * m[jj] : T(0);
        s[jj] = ok ? T(2) * lambda_or_one(a.lambda_local) * m[jj] * x : T(0);  // dP
      }
      accumulate_shuffled(dqn, s, sk, d, part);
    }
  }
  if (a.global && p.g > 0) {  // dQ̂ += λg dO S_gᵀ, S_g streamed transposed
    const T* S = a.states + (kvh * a.groups + p.g) * d * d;
    for (int e0 = 0; e0 < d; e0 += R) {
      const int n = min(R, d - e0);
      __syncthreads();
      load_tile_transposed(sk, S, R, n, d, e0);
      __syncthreads();
      T part_sum[kAcc];
      zero(part_sum);
      accumulate_from_shared(part_sum, sdo + r * ld + e0, sk, n, d, part);
#pragma unroll
      for (int j = 0; j < kAcc; ++j) dqn[j] += lambda_or_one(a.lambda_global) * part_sum[j];
    }
  }
  normalize_backward_row(dqn, sq + r * ld, rinv, d, part);
  if (r < p.rows) store_row(a.dq + (bh * a.seq + i) * d, dqn, d, part);
  const T block_local = block_sum(local_sum);
  if (threadIdx.x == 0) a.partial_local[bh * gridDim.x + blockIdx.x] = static_cast<double>(block_local);
}

// dk, dv (before the conv term) for one (kv head, tile of R keys in a group).
template <typename T, int R>
__global__ void __launch_bounds__(kLanes* R) dkdv_kernel(BackwardArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = a.d, ld = d + 1;
  T* sk = reinterpret_cast<T*>(smem);
  T* sv = sk + R * ld;
  T* sq = sv + R * ld;
  T* sdo = sq + R * ld;
  const TilePos p = tile_pos(blockIdx.x, a.group, a.seq, R);
  if (p.rows == 0) return;
  const int64_t bk = blockIdx.y, b = bk / a.hkv, kv = bk % a.hkv, rep = a.hq / a.hkv;
  const int r = threadIdx.x / kLanes, part = threadIdx.x % kLanes;
  const int64_t key = p.t0 + r;

  load_tile(sk, a.k + (bk * a.seq + p.t0) * d, R, p.rows, d);
  load_tile(sv, a.v + (bk * a.seq + p.t0) * d, R, p.rows, d);
  __syncthreads();
  const T rinv = normalize_tile_row(sk, d, a.eps);
  __syncthreads();

  T dkn[kAcc], dv[kAcc];
  zero(dkn);
  zero(dv);
  if (a.local) {
    for (int64_t rr = 0; rr < rep; ++rr) {
      const int64_t bh = b * a.hq + kv * rep + rr;
      for (int64_t i0 = p.t0; i0 < p.ge; i0 += R) {  // queries of the group at or after the tile's first key
        const int nq = static_cast<int>(min(int64_t(R), p.ge - i0));
        __syncthreads();
        load_tile(sq, a.q + (bh * a.seq + i0) * d, R, nq, d);
        load_tile(sdo, a.dout + (bh * a.seq + i0) * d, R, nq, d);
        __syncthreads();
        normalize_tile_row(sq, d, a.eps);
        __syncthreads();
        T pt[R / kLanes], mt[R / kLanes];
        row_dots(sk + r * ld, sq, d, part, pt);   // Pᵀ
        row_dots(sv + r * ld, sdo, d, part, mt);  // Mᵀ
#pragma unroll
        for (int jj = 0; jj < R / kLanes; ++jj) {
          const int64_t qi = i0 + part + kLanes * jj;
          const bool ok = r < p.rows && qi < p.ge && qi >= key;
          const T x = pt[jj] > T(0) ? pt[jj] : T(0);
          pt[jj] = ok ? lambda_or_one(a.lambda_local) * x * x : T(0);             // λl Aᵀ
          mt[jj] = ok ? T(2) * lambda_or_one(a.lambda_local) * mt[jj] * x : T(0);  // dPᵀ
        }
        accumulate_shuffled(dv, pt, sdo, d, part);
        accumulate_shuffled(dkn, mt, sq, d, part);
      }
    }
  }
  if (a.global && p.g + 1 < a.groups) {
    const T* D = a.D + (bk * a.groups + p.g) * d * d;
    for (int c0 = 0; c0 < d; c0 += R) {
      const int n = min(R, d - c0);
      __syncthreads();
      load_tile(sq, D + c0 * d, R, n, d);                // rows a of D
      load_tile_transposed(sdo, D, R, n, d, c0);         // rows e of Dᵀ
      __syncthreads();
      accumulate_from_shared(dv, sk + r * ld + c0, sq, n, d, part);   // dV += K̂ D
      accumulate_from_shared(dkn, sv + r * ld + c0, sdo, n, d, part); // dK̂ += V Dᵀ
    }
  }
  normalize_backward_row(dkn, sk + r * ld, rinv, d, part);
  if (r < p.rows) {
    store_row(a.dk + (bk * a.seq + key) * d, dkn, d, part);
    store_row(a.dv + (bk * a.seq + key) * d, dv, d, part);
  }
}

// dv_s (+)= Σ_{heads of the group} Σ_{δ ≤ min(C−1, T−1−s)} w_h[δ] dO_h[s+δ].
template <typename T>
struct ConvBackwardDv {
  const T *dout, *w;
  T* dv;
  int64_t hq, hkv, seq, d, taps;
  bool accumulate;
  __device__ void operator()(int64_t idx) const {
    const int64_t e = idx % d, s = (idx / d) % seq, bk = idx / (d * seq);
    const int64_t b = bk / hkv, kv = bk % hkv, rep = hq / hkv;
    T acc = 0;
    for (int64_t rr = 0; rr < rep; ++rr) {
      const int64_t h = kv * rep + rr;
      const T* g = dout + ((b * hq + h) * seq + s) * d + e;
      const T* wh = w + h * taps;
      for (int64_t delta = 0; delta <= min(taps - 1, seq - 1 - s); ++delta) acc += wh[delta] * g[delta * d];
    }
    dv[idx] = accumulate ? dv[idx] + acc : acc;
  }
};

// partial[bh, δ] = Σ_{t ≥ δ} dO_bh[t] · v_kv[t − δ]  (one block per (δ, bh)).
template <typename T>
__global__ void conv_dw_kernel(const T* dout, const T* v, double* partial, int64_t hq, int64_t hkv, int64_t seq,
                               int64_t d, int64_t taps) {
  const int64_t delta = blockIdx.x, bh = blockIdx.y;
  const int64_t kvh = (bh / hq) * hkv + (bh % hq) / (hq / hkv);
  const T* g = dout + bh * seq * d;
  const T* vh = v + kvh * seq * d;
  const int64_t n = delta < seq ? (seq - delta) * d : 0;  // products over t in [δ, T)
  T acc = 0;
  for (int64_t idx = threadIdx.x; idx < n; idx += blockDim.x) acc += g[delta * d + idx] * vh[idx];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[bh * taps + delta] = static_cast<double>(acc);
}

// dconv_w[h, δ] = Σ_b partial[b·Hq + h, δ] in batch order.
template <typename T>
struct ConvDwFinish {
  const double* partial;
  T* dw;
  int64_t batch, hq, taps;
  __device__ void operator()(int64_t idx) const {
    double acc = 0;
    for (int64_t b = 0; b < batch; ++b) acc += partial[b * hq * taps + idx];
    dw[idx] = static_cast<T>(acc);
  }
};

struct ReadDouble {
  const double* x;
  __device__ double operator()(int64_t i) const { return x[i]; }
};

// ⟨W_g, S_g⟩ terms of dλg (groups g ≥ 1; W_0 is never computed).
template <typename T>
struct GlobalLambdaTerm {
  const T *W, *S;
  int64_t groups, dd;
  __device__ double operator()(int64_t idx) const {
    if ((idx / dd) % groups == 0) return 0.0;
    return static_cast<double>(W[idx]) * static_cast<double>(S[idx]);
  }
};

}  // namespace

template <typename T>
void aug_backward(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                  const T* conv_w, const T* lambda_local, const T* lambda_global, const T* dout, T* dq, T* dk, T* dv, T* dconv_w,
                  T* dlambda_local, T* dlambda_global) {
  check_aug_dims(dm, "aug_backward");
  constexpr int R = AugTiles<T>::R;
  const int64_t B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, d = dm.head_dim, C = dm.taps;
  const int64_t groups = dm.groups(), dd = d * d, nq = B * Hq * dm.seq * d, nkv = B * Hkv * dm.seq * d;
  const bool attn = br.local || br.global;
  const int64_t tiles = groups * tiles_per_group(dm.group, R);

  // D_g = λg Σ_{g'>g} global_scale(g')·W_g' per kv head (and dλg from W before the scan overwrites it).
  Scratch<T> D(br.global ? B * Hkv * groups * dd : 1);
  if (br.global && nq > 0) {
    OuterArgs<T> o{q, dout, D.get(), Hkv, Hq / Hkv, dm.seq, dm.group, groups, 1, static_cast<int>(d),
                   static_cast<T>(dm.eps)};
    launch_outer(o, groups - 1, B * Hkv, "aug_backward (Q̂ᵀdO)");
    reduce_to_device(GlobalLambdaTerm<T>{D.get(), states, groups, dd}, B * Hkv * groups * dd, dlambda_global, false,
                     "aug_backward (dλg)");
    for_each(B * Hkv * dd, GroupScan<T>{D.get(), groups, dd, true, T(1), lambda_global, dm.global_mean, dm.group},
             "aug_backward (scan)");
  } else {
    check(cudaMemsetAsync(dlambda_global, 0, sizeof(T), stream()), "aug_backward");
  }

  Scratch<double> partial_local(B * Hq * tiles);
  if (attn && nq > 0) {
    BackwardArgs<T> a{q, k, v, states, dout, D.get(), dq, dk, dv, partial_local.get(), Hq, Hkv, dm.seq, dm.group,
                      groups, static_cast<int>(d), static_cast<T>(dm.eps), lambda_local, lambda_global, br.local,
                      br.global};
    const size_t smem = sizeof(T) * 4 * R * (d + 1);
    allow_shared_memory(dq_kernel<T, R>, smem, "aug_backward (dq)");
    dq_kernel<T, R><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(B * Hq)), kLanes * R, smem,
                      stream()>>>(a);
    check_launch("aug_backward (dq)");
    allow_shared_memory(dkdv_kernel<T, R>, smem, "aug_backward (dk, dv)");
    dkdv_kernel<T, R><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(B * Hkv)), kLanes * R, smem,
                        stream()>>>(a);
    check_launch("aug_backward (dk, dv)");
  } else if (nq > 0) {
    check(cudaMemsetAsync(dq, 0, sizeof(T) * nq, stream()), "aug_backward");
    check(cudaMemsetAsync(dk, 0, sizeof(T) * nkv, stream()), "aug_backward");
    if (!br.conv) check(cudaMemsetAsync(dv, 0, sizeof(T) * nkv, stream()), "aug_backward");
  }
  if (br.local && nq > 0)
    reduce_to_device(ReadDouble{partial_local.get()}, B * Hq * tiles, dlambda_local, false, "aug_backward (dλl)");
  else
    check(cudaMemsetAsync(dlambda_local, 0, sizeof(T), stream()), "aug_backward");

  if (br.conv) {
    for_each(nkv, ConvBackwardDv<T>{dout, conv_w, dv, Hq, Hkv, dm.seq, d, C, attn}, "aug_backward (conv dv)");
    if (dconv_w && B * Hq > 0) {
      Scratch<double> partial(B * Hq * C);
      conv_dw_kernel<<<dim3(static_cast<unsigned>(C), static_cast<unsigned>(B * Hq)), kThreads, 0, stream()>>>(
          dout, v, partial.get(), Hq, Hkv, dm.seq, d, C);
      check_launch("aug_backward (conv dw)");
      for_each(Hq * C, ConvDwFinish<T>{partial.get(), dconv_w, B, Hq, C}, "aug_backward (conv dw sum)");
    }
  } else if (dconv_w) {
    check(cudaMemsetAsync(dconv_w, 0, sizeof(T) * Hq * C, stream()), "aug_backward");
  }
}

namespace {
template <typename T>
void fill(AugKernels<T>& k) {
  k.backward = &aug_backward<T>;
}
}  // namespace

void fill_aug_backward(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cuda
