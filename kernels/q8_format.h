// The Q8 weight format: what `--weights int8` decodes with (docs/formats.md §9, "Q8 inference weights").
//
// A weight W [N, K] (a linear layer's, y = x Wᵀ) is quantised per row and block of 32 inputs: a symmetric f32 scale
// s = max|w| / 127 and values q = round-half-even(w · (127 / max|w|)) in [-127, 127] (all in f32), stored offset by
// +128 as unsigned bytes (1..255; AVX-512 VNNI's vpdpbusd multiplies unsigned by signed bytes, and the activations
// are the signed side). K is padded with zeros to whole blocks.
//
// The rows are stored in panels of 16 (the last panel may be narrower: width = min(16, N − 16p)), so that one 64-byte
// load is the same 4 inputs of 16 output rows: the GEMM's vector lanes are output rows, every lane accumulates its own
// dot product, and no horizontal sum is needed. Panel p holds, for each block b in order, one record of width · 36
// bytes:
//   8 groups g (inputs 32b + 4g .. 32b + 4g + 3), each `width` × 4 bytes (row 16p + l's 4 bytes at 4l),
//   then `width` f32 scales (row 16p + l's at 4l).
// Every row therefore costs q8_row_bytes(K) = blocks · 36 bytes, and the whole weight N · q8_row_bytes(K): a packed
// weight is a [N, q8_row_bytes(K)] byte tensor whatever the panel order inside it.
//
// The layout is plain bytes, so the same packing serves every backend; it is done on the host.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define LINSPEC_Q8_HD __host__ __device__
#else
#define LINSPEC_Q8_HD
#endif

namespace linspec::kernels {

constexpr int64_t kQ8Block = 32;          // inputs per scale
constexpr int64_t kQ8Groups = 8;          // 4-input groups per block
constexpr int64_t kQ8Panel = 16;          // output rows per panel (one 512-bit vector of int32 lanes)
constexpr int64_t kQ8BlockBytes = 36;     // per row and block: 32 value bytes + one f32 scale
constexpr int kQ8Offset = 128;            // stored byte = q + 128

LINSPEC_Q8_HD inline int64_t q8_blocks(int64_t k) { return (k + kQ8Block - 1) / kQ8Block; }
LINSPEC_Q8_HD inline int64_t q8_row_bytes(int64_t k) { return q8_blocks(k) * kQ8BlockBytes; }
LINSPEC_Q8_HD inline int64_t q8_panel_width(int64_t n, int64_t panel) {
  const int64_t left = n - panel * kQ8Panel;
  return left < kQ8Panel ? left : kQ8Panel;
}
// Where block b of panel p starts (byte offset in the packed weight).
LINSPEC_Q8_HD inline int64_t q8_record_offset(int64_t n, int64_t k, int64_t panel, int64_t b) {
  return panel * kQ8Panel * q8_row_bytes(k) + b * q8_panel_width(n, panel) * kQ8BlockBytes;
}
// The byte of row r, input i; the f32 scale of row r, block b.
LINSPEC_Q8_HD inline int64_t q8_value_offset(int64_t n, int64_t k, int64_t r, int64_t i) {
  const int64_t p = r / kQ8Panel, lane = r % kQ8Panel, width = q8_panel_width(n, p), within = i % kQ8Block;
  return q8_record_offset(n, k, p, i / kQ8Block) + (within / 4 * width + lane) * 4 + within % 4;
}
LINSPEC_Q8_HD inline int64_t q8_scale_offset(int64_t n, int64_t k, int64_t r, int64_t b) {
  const int64_t p = r / kQ8Panel, width = q8_panel_width(n, p);
  return q8_record_offset(n, k, p, b) + kQ8Block * width + r % kQ8Panel * 4;
}

// Packs w [n, k] (f32, row-major) into `out` (n · q8_row_bytes(k) bytes).
void q8_pack_rows(const float* w, int64_t n, int64_t k, uint8_t* out);
// The value the packed weight stands for: dequantised input i of row r (tests and references).
float q8_dequantize(const uint8_t* packed, int64_t n, int64_t k, int64_t r, int64_t i);

}  // namespace linspec::kernels
