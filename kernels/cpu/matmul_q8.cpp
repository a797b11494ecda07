// f32 activations × Q8 weights (kernels/q8_format.h) on the CPU: the `--weights int8` decode GEMM.
//
// Decode reads every weight once per token, so its speed is the bytes it reads: Q8 reads ~1.1 bytes per weight
// against f32's 4. Verification of a draft tree, or a batch of sequences, multiplies M activation rows by the same
// weights; there the cost is arithmetic, and each vpdpbusd (64 multiply-adds) must do useful work. The weights are
// stored in panels of 16 output rows, so the 16 int32 lanes of a vector are 16 outputs: per 32-input block and
// activation row, 8 vpdpbusd (unsigned weight bytes × the row's 4 signed activation bytes, broadcast) accumulate
// the block's exact integer dot products of 16 outputs, and 3 more ops scale them into the f32 sums (convert,
// scale product, FMA). No horizontal sums: ~73% of the instructions are multiply-adds.
// The activations are quantised per row and 32-block like the weights. The weights' +128 offset adds 128 · Σq_a
// per block: each block's integer accumulator starts at −128 · Σq_a, which cancels it exactly.
//
// Every output c[m, n] is computed by the same sequence of operations whatever M is and however rows and panels are
// tiled: a tree verification over N nodes gives bit for bit the logits that N single-token decode steps give, so
// greedy speculative decoding reproduces greedy AR exactly at these weights.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/backend.h"
#include "kernels/q8_format.h"

namespace linspec::kernels::cpu {
namespace {

// Activations quantised like the weights: per row, blocks · 32 int8 in natural order (4-byte groups broadcast as
// int32), per block its scale and the accumulator's start value −128 · Σq_a.
struct QuantizedActivations {
  int64_t blocks = 0;
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> start;
  const int32_t* groups(int64_t row, int64_t b) const {
    return reinterpret_cast<const int32_t*>(q.data() + (row * blocks + b) * kQ8Block);
  }
};

// One 32-input block of a row (inputs beyond `valid` are zero).
__attribute__((target("avx512f,avx512bw,avx512dq"))) void quantize_block_avx512(const float* src, int64_t valid,
                                                                                int8_t* dst, float* scale,
                                                                                int32_t* start) {
  const auto mask = [&](int half) {
    const int64_t left = std::clamp<int64_t>(valid - 16 * half, 0, 16);
    return static_cast<__mmask16>((1u << left) - 1u);
  };
  const __m512 x0 = _mm512_maskz_loadu_ps(mask(0), src), x1 = _mm512_maskz_loadu_ps(mask(1), src + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
  const __m512 inv = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
  // Round to nearest even (the MXCSR default), as std::nearbyint in the reference; |x · inv| <= 127.
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, inv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, inv));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), _mm512_cvtepi32_epi8(q1));
  *scale = amax / 127.f;
  *start = -kQ8Offset * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}

void quantize_block_portable(const float* src, int64_t valid, int8_t* dst, float* scale, int32_t* start) {
  float amax = 0.f;
  for (int64_t i = 0; i < valid; ++i) amax = std::max(amax, std::fabs(src[i]));
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  int32_t sum = 0;
  for (int64_t i = 0; i < kQ8Block; ++i) {
    const int qi = i < valid ? static_cast<int>(std::nearbyint(src[i] * inv)) : 0;
    dst[i] = static_cast<int8_t>(qi);
    sum += qi;
  }
  *scale = amax / 127.f;
  *start = -kQ8Offset * sum;
}

void quantize_activations(const float* a, int64_t m, int64_t k, bool simd, QuantizedActivations& out) {
  out.blocks = q8_blocks(k);
  out.q.resize(m * out.blocks * kQ8Block);
  out.scale.resize(m * out.blocks);
  out.start.resize(m * out.blocks);
#pragma omp parallel for schedule(static) if (m * k > (1 << 16))
  for (int64_t r = 0; r < m; ++r)
    for (int64_t b = 0; b < out.blocks; ++b) {
      const int64_t i = r * out.blocks + b, valid = std::min(kQ8Block, k - b * kQ8Block);
      (simd ? quantize_block_avx512 : quantize_block_portable)(a + r * k + b * kQ8Block, valid,
                                                               out.q.data() + i * kQ8Block, &out.scale[i],
                                                               &out.start[i]);
    }
}

// Each panel is its own sequential stream; a tile reads 4 (one token) or 2 of them side by side, and the hardware
// prefetcher alone falls behind. Prefetching each block's lines 2 KB ahead: a SmolLM2 step of GEMMs
// (bench_decode_gemm BM_decode_step_q8, medians of 5 alternating runs) 3.86 → 3.69 ms for one token, 6.12 → 4.34 ms
// for 4 rows; 4 and 8 KB were no better.
constexpr int64_t kPrefetchBytes = 2048;

// MR activation rows × NR panels (16 outputs each; `width` < 16 only for a single, last panel) over the whole
// reduction. Per block: 8 vpdpbusd per (row, panel) into an integer accumulator, then convert, scale, FMA.
template <int MR, int NR, bool Full>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vnni"))) void tile_vnni(const QuantizedActivations& qa,
                                                                               int64_t m0, const uint8_t* w,
                                                                               int64_t n, int64_t panel0,
                                                                               float* c) {
  const int64_t blocks = qa.blocks, width = Full ? kQ8Panel : q8_panel_width(n, panel0);
  const int64_t record = width * kQ8BlockBytes, group = width * 4;
  const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1u);  // all lanes when Full
  const uint8_t* panel[NR];
  for (int j = 0; j < NR; ++j) panel[j] = w + (panel0 + j) * kQ8Panel * blocks * kQ8BlockBytes;
  __m512 sum[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) sum[r][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    if (m0 == 0)  // later row groups read these panels from cache
      for (int j = 0; j < NR; ++j)
        for (int64_t line = 0; line < record; line += 64)
          _mm_prefetch(reinterpret_cast<const char*>(panel[j] + b * record + line) + kPrefetchBytes, _MM_HINT_T0);
    __m512i dot[MR][NR];
    const int32_t* act[MR];
    for (int r = 0; r < MR; ++r) {
      act[r] = qa.groups(m0 + r, b);
      const __m512i start = _mm512_set1_epi32(qa.start[(m0 + r) * blocks + b]);
      for (int j = 0; j < NR; ++j) dot[r][j] = start;
    }
    for (int g = 0; g < kQ8Groups; ++g) {
      __m512i wv[NR];
      for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_epi32(mask, panel[j] + b * record + g * group);
      for (int r = 0; r < MR; ++r) {
        const __m512i av = _mm512_set1_epi32(act[r][g]);
        for (int j = 0; j < NR; ++j) dot[r][j] = _mm512_dpbusd_epi32(dot[r][j], wv[j], av);
      }
    }
    __m512 ws[NR];
    for (int j = 0; j < NR; ++j) ws[j] = _mm512_maskz_loadu_ps(mask, panel[j] + b * record + kQ8Groups * group);
    for (int r = 0; r < MR; ++r) {
      const __m512 sa = _mm512_set1_ps(qa.scale[(m0 + r) * blocks + b]);
      for (int j = 0; j < NR; ++j)
        sum[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][j]), _mm512_mul_ps(ws[j], sa), sum[r][j]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) {
      float* out = c + (m0 + r) * n + (panel0 + j) * kQ8Panel;
      _mm512_mask_storeu_ps(out, mask, sum[r][j]);
    }
}

// The same arithmetic per output without VNNI: for CPUs without AVX-512 VNNI. Consistent with itself for every M,
// which is what exactness needs.
void output_portable(const QuantizedActivations& qa, int64_t row, const uint8_t* w, int64_t n, int64_t k, int64_t col,
                     float* c) {
  float sum = 0.f;
  for (int64_t b = 0; b < qa.blocks; ++b) {
    const int8_t* act = reinterpret_cast<const int8_t*>(qa.groups(row, b));
    int32_t dot = qa.start[row * qa.blocks + b];
    for (int64_t i = 0; i < kQ8Block; ++i)
      dot += static_cast<int32_t>(w[q8_value_offset(n, k, col, b * kQ8Block + i)]) * act[i];
    float ws;
    std::memcpy(&ws, w + q8_scale_offset(n, k, col, b), sizeof(float));
    sum += static_cast<float>(dot) * (ws * qa.scale[row * qa.blocks + b]);
  }
  c[row * n + col] = sum;
}

}  // namespace

void gemm_q8(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w, float* c) {
  if (m == 0 || n == 0) return;
  static thread_local QuantizedActivations scratch;
  QuantizedActivations& qa = scratch;  // the caller's: inside the parallel region the name would be each thread's
  static const bool vnni =
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  quantize_activations(a, m, k, vnni, qa);
  const int64_t panels = (n + kQ8Panel - 1) / kQ8Panel, full_panels = n / kQ8Panel;
  // Each thread takes a contiguous, equal share of the panels (36 panels of o_proj would split 5:4 in items of 4).
#pragma omp parallel if (m * n * k > (1 << 15))
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t p0 = panels * t / threads, p1 = panels * (t + 1) / threads;
    if (!vnni) {
      for (int64_t col = p0 * kQ8Panel; col < std::min(n, p1 * kQ8Panel); ++col)
        for (int64_t r = 0; r < m; ++r) output_portable(qa, r, w, n, k, col, c);
    } else {
      // Full panels in tiles (one token: 4 panels in flight; several rows: 4 rows × 2 panels), then a last,
      // narrower panel on its own.
      const int64_t f1 = std::min(p1, full_panels);
      if (m == 1) {
        int64_t p = p0;
        for (; p + 4 <= f1; p += 4) tile_vnni<1, 4, true>(qa, 0, w, n, p, c);
        for (; p < f1; ++p) tile_vnni<1, 1, true>(qa, 0, w, n, p, c);
      } else {
        // Pairs of panels against every row (4 at a time, the last 1-3 together), so a pair's weights come from
        // memory once and from cache for the other rows.
        auto rows = [&]<int C>(int64_t p) {
          int64_t r = 0;
          for (; r + 4 <= m; r += 4) tile_vnni<4, C, true>(qa, r, w, n, p, c);
          switch (m - r) {
            case 3: tile_vnni<3, C, true>(qa, r, w, n, p, c); break;
            case 2: tile_vnni<2, C, true>(qa, r, w, n, p, c); break;
            case 1: tile_vnni<1, C, true>(qa, r, w, n, p, c); break;
          }
        };
        int64_t p = p0;
        for (; p + 2 <= f1; p += 2) rows.template operator()<2>(p);
        for (; p < f1; ++p) rows.template operator()<1>(p);
      }
      if (p1 > full_panels)
        for (int64_t r = 0; r < m; ++r) tile_vnni<1, 1, false>(qa, r, w, n, full_panels, c);
    }
  }
}

}  // namespace linspec::kernels::cpu
