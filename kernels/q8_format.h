// The Q8 weight format: what `--weights int8` decodes with (docs/formats.md, "Q8 inference weights").
//
// A weight W [N, K] (a linear layer's, y = x Wᵀ) becomes N packed rows of q8_row_bytes(K) bytes:
//   Kp = K rounded up to 64 (zero-padded), then Kp bytes of quantised values, then Kp / 32 f32 scales.
// Each block of 32 consecutive inputs has its own symmetric scale s = max|w| / 127 and values
// q = round-half-even(w · (127 / max|w|)) in [-127, 127] (all in f32), stored offset by +128 as unsigned bytes
// (1..255): AVX-512 VNNI's vpdpbusd multiplies unsigned by signed bytes, and the activations are the signed side.
// Blocks come in pairs (one 64-byte chunk = inputs [64j, 64j + 64)): the chunk's 16 four-byte groups alternate between
// its first block (even groups) and its second (odd groups), so one 64-byte load feeds 16 int32 lanes whose even lanes
// belong to one scale and odd lanes to the other, and the pair of scales broadcasts as one 64-bit value. The
// activations are quantised the same way (per 32-block, per row) by the GEMM itself.
//
// The layout is plain bytes, so the same rows serve every backend; the packing is done on the host.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define LINSPEC_Q8_HD __host__ __device__
#else
#define LINSPEC_Q8_HD
#endif

namespace linspec::kernels {

constexpr int64_t kQ8Block = 32;  // inputs per scale
constexpr int64_t kQ8Chunk = 64;  // inputs per interleaved pair of blocks
constexpr int kQ8Offset = 128;    // stored byte = q + 128

inline int64_t q8_padded_k(int64_t k) { return (k + kQ8Chunk - 1) / kQ8Chunk * kQ8Chunk; }
inline int64_t q8_row_bytes(int64_t k) {
  const int64_t kp = q8_padded_k(k);
  return kp + kp / kQ8Block * static_cast<int64_t>(sizeof(float));
}
// Position inside a 64-byte chunk of input i (0..63 within the chunk): block (i / 32) picks even or odd 4-byte
// groups, and the offset within the block fills its groups in order.
LINSPEC_Q8_HD inline int64_t q8_chunk_position(int64_t i) {
  const int64_t block = i / kQ8Block, within = i % kQ8Block;
  return (within / 4 * 2 + block) * 4 + within % 4;
}

// Packs rows of w [n, k] (f32, row-major) into `out` (n · q8_row_bytes(k) bytes).
void q8_pack_rows(const float* w, int64_t n, int64_t k, uint8_t* out);
// The value the packed row stands for: dequantised input i of row r (tests and references).
float q8_dequantize(const uint8_t* packed, int64_t k, int64_t r, int64_t i);

}  // namespace linspec::kernels
