// Recurrent (decode) form of the aug linear attention on the GPU (see kernels/aug_attention.h): the same O(1)
// state as the CPU — S over complete groups, the current group's (k̂, v) buffer and a ring of the last C−1 values —
// updated by small kernels; a group is folded into S right after its last token's output, so the global term is
// exact at every position.
#include <algorithm>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

// Copies rows [0, count) of src [heads, n, d] (starting at row `first`) into rows [slot, slot + count) of the group
// buffers [heads, G, d].
template <typename T>
struct BufferRows {
  const T *khat, *v;
  T *buf_k, *buf_v;
  int64_t n, first, count, slot, G, d;
  __device__ void operator()(int64_t idx) const {
    const int64_t e = idx % d, s = (idx / d) % count, head = idx / (d * count);
    const int64_t src = (head * n + first + s) * d + e, dst = (head * G + slot + s) * d + e;
    buf_k[dst] = khat[src];
    buf_v[dst] = v[src];
  }
};

// hist slot p % H <- v at absolute position p, for positions [p0, p0 + count) given as rows first.. of v [heads, n, d].
template <typename T>
struct HistoryRows {
  const T* v;
  T* hist;
  int64_t n, first, count, p0, H, d;
  __device__ void operator()(int64_t idx) const {
    const int64_t e = idx % d, s = (idx / d) % count, head = idx / (d * count);
    hist[(head * H + (p0 + s) % H) * d + e] = v[(head * n + first + s) * d + e];
  }
};

// S += K̂ᵀV of a complete group buffer (the group's sum first, then added, like the CPU).
template <typename T>
struct FoldGroup {
  const T *buf_k, *buf_v;
  T* S;
  int64_t G, d;
  __device__ void operator()(int64_t idx) const {
    const int64_t e = idx % d, a = (idx / d) % d, head = idx / (d * d);
    const T* bk = buf_k + head * G * d;
    const T* bv = buf_v + head * G * d;
    T acc = 0;
    for (int64_t i = 0; i < G; ++i) acc += bk[i * d + a] * bv[i * d + e];
    S[idx] += acc;
  }
};

template <typename T>
struct DecodeArgs {
  const T *qhat, *v, *w, *S, *buf_k, *buf_v, *hist;
  T* out;
  int64_t hq, hkv, d, G, taps, pos;
  const T *lambda_local, *lambda_global;  // device scalars (null: 1)
  bool local, global, conv;
  bool global_mean;  // S holds the plain sum; the output scales it (AugDims::global_scale)
};

// One block per (batch, query head): weights of the buffered group rows, then each thread sums its channels in the
// CPU's order (local rows, S rows, conv taps).
template <typename T>
__global__ void decode_output_kernel(DecodeArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* sq = reinterpret_cast<T*>(smem);
  T* wl = sq + a.d;
  const int64_t bh = blockIdx.x, b = bh / a.hq, h = bh % a.hq, kv = b * a.hkv + h / (a.hq / a.hkv);
  const int64_t d = a.d, j = a.pos % a.G, H = a.taps - 1;
  for (int64_t e = threadIdx.x; e < d; e += blockDim.x) sq[e] = a.qhat[bh * d + e];
  __syncthreads();
  const int lane = threadIdx.x & 31, warps = blockDim.x / 32;
  if (a.local) {
    const T* bk = a.buf_k + kv * a.G * d;
    for (int64_t i = threadIdx.x / 32; i <= j; i += warps) {
      T dot = 0;
      for (int64_t e = lane; e < d; e += 32) dot += sq[e] * bk[i * d + e];
      dot = warp_sum(dot);
      const T x = dot > T(0) ? dot : T(0);
      if (lane == 0) wl[i] = lambda_or_one(a.lambda_local) * x * x;
    }
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < d; e += blockDim.x) {
    T acc = 0;
    if (a.local) {
      const T* bv = a.buf_v + kv * a.G * d + e;
      for (int64_t i = 0; i <= j; ++i) acc += wl[i] * bv[i * d];
    }
    if (a.global) {
      const T* S = a.S + kv * d * d + e;
      const T lg = lambda_or_one(a.lambda_global) * group_mean_scale<T>(a.global_mean, a.pos / a.G, a.G);
      for (int64_t r = 0; r < d; ++r) acc += (lg * sq[r]) * S[r * d];
    }
    if (a.conv) {
      const T* w = a.w + h * a.taps;
      acc += w[0] * a.v[kv * d + e];
      for (int64_t delta = 1; delta <= min(H, a.pos); ++delta)
        acc += w[delta] * a.hist[(kv * H + (a.pos - delta) % H) * d + e];
    }
    a.out[bh * d + e] = acc;
  }
}

// Buffers, folds and records tokens [first, first + count) of khat / v ([heads, n, d]) at positions pos + first ...
template <typename T>
void absorb_rows(const AugDims& dm, const AugStateRef<T>& st, const T* khat, const T* v, int64_t n, int64_t first,
                 int64_t count) {
  const int64_t heads = dm.batch * dm.kv_heads, d = dm.head_dim, G = dm.group, H = dm.taps - 1;
  for (int64_t t = 0; t < count;) {  // segments that end at a group boundary or at the last token
    const int64_t p = st.pos + first + t, slot = p % G, seg = std::min(count - t, G - slot);
    if (st.buf_k) {
      for_each(heads * seg * d, BufferRows<T>{khat, v, st.buf_k, st.buf_v, n, first + t, seg, slot, G, d},
               "aug_absorb (buffer)");
      if (st.S && slot + seg == G)
        for_each(heads * d * d, FoldGroup<T>{st.buf_k, st.buf_v, st.S, G, d}, "aug_absorb (fold)");
    }
    t += seg;
  }
  if (st.hist_v && H > 0) {  // only the last H tokens survive in the ring
    const int64_t keep = std::min(count, H), skip = count - keep;
    for_each(heads * keep * d, HistoryRows<T>{v, st.hist_v, n, first + skip, keep, st.pos + first + skip, H, d},
             "aug_absorb (history)");
  }
}

}  // namespace

template <typename T>
void aug_decode_step(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* qhat, const T* khat,
                     const T* v, const T* conv_w, const T* lambda_local, const T* lambda_global, T* out) {
  const int64_t heads = dm.batch * dm.kv_heads, d = dm.head_dim, G = dm.group;
  if (dm.batch * dm.q_heads == 0 || d == 0) return;
  if (st.buf_k)
    for_each(heads * d, BufferRows<T>{khat, v, st.buf_k, st.buf_v, 1, 0, 1, st.pos % G, G, d}, "aug_decode_step");
  DecodeArgs<T> a{qhat, v, conv_w, st.S, st.buf_k, st.buf_v, st.hist_v, out, dm.q_heads, dm.kv_heads, d, G,
                  dm.taps, st.pos, lambda_local, lambda_global, br.local, br.global, br.conv, dm.global_mean};
  const size_t smem = sizeof(T) * (d + G);
  allow_shared_memory(decode_output_kernel<T>, smem, "aug_decode_step");
  decode_output_kernel<<<static_cast<unsigned>(dm.batch * dm.q_heads), 128, smem, stream()>>>(a);
  check_launch("aug_decode_step");
  // Retire the token: ring slot, and fold the group into S when this token completes it.
  if (st.hist_v && dm.taps > 1)
    for_each(heads * d, HistoryRows<T>{v, st.hist_v, 1, 0, 1, st.pos, dm.taps - 1, d}, "aug_decode_step (history)");
  if (st.S && st.buf_k && st.pos % G == G - 1)
    for_each(heads * d * d, FoldGroup<T>{st.buf_k, st.buf_v, st.S, G, d}, "aug_decode_step (fold)");
}

template <typename T>
void aug_absorb(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* khat, const T* v, int64_t n) {
  if (n <= 0 || dm.batch * dm.kv_heads == 0) return;
  absorb_rows(dm, st, khat, v, n, 0, n);
}

namespace {
template <typename T>
void fill(AugKernels<T>& k) {
  k.decode_step = &aug_decode_step<T>;
  k.absorb = &aug_absorb<T>;
}
}  // namespace

void fill_aug_decode(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cuda
