// f32 activations × Q8 weights (kernels/q8_format.h) on the CPU: the `--weights int8` decode GEMM.
//
// Decode reads every weight once per token, so its speed is the bytes it reads: Q8 reads ~1.1 bytes per weight
// against f32's 4. The activations (a few KB) are quantised per 32-block and per row, like the weights, and each
// 64-input chunk is one vpdpbusd (unsigned weight bytes × signed activation bytes, 4 products per int32 lane).
// The weights' +128 offset adds 128 · Σq_a per block: lanes are scaled by their block pair's (s_w · s_a) and summed
// in f32, and the offset's share, Σ_b s_w · (−128 s_a Σq_a), is added once per output.
//
// Every output c[m, n] is computed by the same sequence of operations whatever M is and however rows are tiled:
// a tree verification over N nodes gives bit for bit the logits that N single-token decode steps give, so greedy
// speculative decoding reproduces greedy AR exactly at these weights.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/backend.h"
#include "kernels/cpu/output_tiles.h"
#include "kernels/q8_format.h"

namespace linspec::kernels::cpu {
namespace {

// Activations quantised like the weights: per row, Kp int8 in the interleaved chunk layout, then per block its
// scale and its offset correction −128 · s_a · Σq_a, which the weight row's block scales turn into the term the
// weights' +128 offset added (applied once per output at the end, so the inner loop starts each lane at zero).
struct QuantizedActivations {
  int64_t kp = 0, blocks = 0;
  std::vector<int8_t> q;
  std::vector<float> scale, correction;
};

// One 64-input chunk of a row (inputs beyond k are zero): both blocks' scales and corrections, and the bytes.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) void quantize_chunk_vnni(const float* src,
                                                                                         int64_t valid, int8_t* dst,
                                                                                         float* scale,
                                                                                         float* correction) {
  __m512 x[4];
  for (int v = 0; v < 4; ++v) {
    const int64_t left = std::clamp<int64_t>(valid - 16 * v, 0, 16);
    x[v] = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << left) - 1u), src + 16 * v);
  }
  __m512i q[4];
  for (int b = 0; b < 2; ++b) {
    const __m512 a0 = _mm512_abs_ps(x[2 * b]), a1 = _mm512_abs_ps(x[2 * b + 1]);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    const __m512 vinv = _mm512_set1_ps(inv);
    // Round to nearest even (the MXCSR default), as std::nearbyint in the reference; |x · inv| <= 127.
    q[2 * b] = _mm512_cvtps_epi32(_mm512_mul_ps(x[2 * b], vinv));
    q[2 * b + 1] = _mm512_cvtps_epi32(_mm512_mul_ps(x[2 * b + 1], vinv));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q[2 * b], q[2 * b + 1]));
    scale[b] = amax / 127.f;
    correction[b] = -static_cast<float>(kQ8Offset) * scale[b] * static_cast<float>(sum);
  }
  // Bytes of each block in order, then the two blocks' 4-byte groups interleaved (first block in even groups).
  alignas(64) int32_t groups[2][8];
  for (int b = 0; b < 2; ++b) {
    const __m128i lo = _mm512_cvtepi32_epi8(q[2 * b]), hi = _mm512_cvtepi32_epi8(q[2 * b + 1]);
    _mm_store_si128(reinterpret_cast<__m128i*>(groups[b]), lo);
    _mm_store_si128(reinterpret_cast<__m128i*>(groups[b] + 4), hi);
  }
  const __m256i first = _mm256_load_si256(reinterpret_cast<const __m256i*>(groups[0]));
  const __m256i second = _mm256_load_si256(reinterpret_cast<const __m256i*>(groups[1]));
  const __m512i idx = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
  _mm512_storeu_si512(dst, _mm512_permutexvar_epi32(idx, both));
}

void quantize_chunk_portable(const float* src, int64_t valid, int8_t* dst, float* scale, float* correction) {
  for (int64_t b = 0; b < 2; ++b) {
    float amax = 0.f;
    for (int64_t i = b * kQ8Block; i < std::min(valid, (b + 1) * kQ8Block); ++i)
      amax = std::max(amax, std::fabs(src[i]));
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    int32_t sum = 0;
    for (int64_t i = b * kQ8Block; i < (b + 1) * kQ8Block; ++i) {
      const int qi = i < valid ? static_cast<int>(std::nearbyint(src[i] * inv)) : 0;
      dst[q8_chunk_position(i)] = static_cast<int8_t>(qi);
      sum += qi;
    }
    scale[b] = amax / 127.f;
    correction[b] = -static_cast<float>(kQ8Offset) * scale[b] * static_cast<float>(sum);
  }
}

void quantize_activations(const float* a, int64_t m, int64_t k, bool vnni, QuantizedActivations& out) {
  out.kp = q8_padded_k(k);
  out.blocks = out.kp / kQ8Block;
  out.q.resize(m * out.kp);
  out.scale.resize(m * out.blocks);
  out.correction.resize(m * out.blocks);
  const int64_t chunks = out.kp / kQ8Chunk;
#pragma omp parallel for schedule(static) if (m * k > (1 << 16))
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < chunks; ++c) {
      const float* src = a + r * k + c * kQ8Chunk;
      const int64_t valid = std::min<int64_t>(kQ8Chunk, k - c * kQ8Chunk);
      int8_t* dst = out.q.data() + r * out.kp + c * kQ8Chunk;
      float* scale = out.scale.data() + r * out.blocks + 2 * c;
      float* correction = out.correction.data() + r * out.blocks + 2 * c;
      if (vnni)
        quantize_chunk_vnni(src, valid, dst, scale, correction);
      else
        quantize_chunk_portable(src, valid, dst, scale, correction);
    }
}

// Σ_b s_w[b] · correction_a[b]: the weights' +128 offset, taken out once per output.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) inline float offset_term(const float* ws,
                                                                                         const float* ca,
                                                                                         int64_t blocks) {
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 16 <= blocks; b += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(ws + b), _mm512_loadu_ps(ca + b), acc);
  if (b < blocks) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (blocks - b)) - 1u);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, ws + b), _mm512_maskz_loadu_ps(mask, ca + b), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// A tile of MR activation rows × NR weight rows over the whole reduction. Each lane starts at zero (no register
// copy), so a (row, weight row, chunk) step is four vector ops: vpdpbusd, convert, scale product, FMA.
template <int MR, int NR>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) void tile_vnni(const QuantizedActivations& qa,
                                                                               int64_t m0, const uint8_t* w,
                                                                               int64_t row_bytes, int64_t n0,
                                                                               int64_t n_total, float* c) {
  const int64_t kp = qa.kp, chunks = kp / kQ8Chunk, blocks = qa.blocks;
  __m512 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = _mm512_setzero_ps();
  const uint8_t* wrow[NR];
  for (int j = 0; j < NR; ++j) wrow[j] = w + (n0 + j) * row_bytes;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    __m512i wv[NR];
    __m512 ws[NR];
    for (int j = 0; j < NR; ++j) {
      wv[j] = _mm512_loadu_si512(wrow[j] + ch * kQ8Chunk);
      double pair;  // the chunk's two block scales, broadcast: even lanes get the first, odd lanes the second
      std::memcpy(&pair, wrow[j] + kp + ch * 2 * sizeof(float), sizeof(pair));
      ws[j] = _mm512_castpd_ps(_mm512_set1_pd(pair));
    }
    for (int r = 0; r < MR; ++r) {
      const int64_t row = m0 + r;
      const __m512i av = _mm512_loadu_si512(qa.q.data() + row * kp + ch * kQ8Chunk);
      double sa_pair;
      std::memcpy(&sa_pair, qa.scale.data() + row * blocks + 2 * ch, sizeof(sa_pair));
      const __m512 sa = _mm512_castpd_ps(_mm512_set1_pd(sa_pair));
      for (int j = 0; j < NR; ++j) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[j], av);
        acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[j], sa), acc[r][j]);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) {
      const float* ws = reinterpret_cast<const float*>(wrow[j] + kp);
      const float offset = offset_term(ws, qa.correction.data() + (m0 + r) * blocks, blocks);
      c[(m0 + r) * n_total + n0 + j] = _mm512_reduce_add_ps(acc[r][j]) + offset;
    }
}

// The same arithmetic without VNNI (int32 dot per lane group, then the same f32 scaling per block): for CPUs
// without AVX-512 VNNI. Consistent with itself for every M, which is what exactness needs.
void tile_portable(const QuantizedActivations& qa, int64_t m, const uint8_t* w, int64_t row_bytes, int64_t n,
                   int64_t n_total, float* c) {
  const int64_t kp = qa.kp, blocks = qa.blocks;
  const uint8_t* wr = w + n * row_bytes;
  const int8_t* ar = qa.q.data() + m * kp;
  float sum = 0.f;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* wc = wr + b / 2 * kQ8Chunk;
    const int8_t* ac = ar + b / 2 * kQ8Chunk;
    int32_t dot = 0;
    for (int64_t i = 0; i < kQ8Block; ++i) {
      const int64_t p = q8_chunk_position((b % 2) * kQ8Block + i);
      dot += (static_cast<int32_t>(wc[p]) - kQ8Offset) * ac[p];
    }
    float ws;
    std::memcpy(&ws, wr + kp + b * sizeof(float), sizeof(float));
    sum += static_cast<float>(dot) * (ws * qa.scale[m * blocks + b]);
  }
  c[m * n_total + n] = sum;
}

}  // namespace

void gemm_q8(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w, float* c) {
  if (m == 0 || n == 0) return;
  static thread_local QuantizedActivations scratch;
  QuantizedActivations& qa = scratch;  // the caller's: inside the parallel region the name would be each thread's
  static const bool vnni =
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  quantize_activations(a, m, k, vnni, qa);
  const int64_t row_bytes = q8_row_bytes(k);
  compute_outputs(
      m, n, k, vnni, [&]<int R, int C>(int64_t r, int64_t j) { tile_vnni<R, C>(qa, r, w, row_bytes, j, n, c); },
      [&](int64_t r, int64_t j) { tile_portable(qa, r, w, row_bytes, j, n, c); });
}

}  // namespace linspec::kernels::cpu
