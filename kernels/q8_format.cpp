// Host packing of the Q8 weight format (kernels/q8_format.h).
#include "kernels/q8_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace linspec::kernels {

void q8_pack_rows(const float* w, int64_t n, int64_t k, uint8_t* out) {
  const int64_t kp = q8_padded_k(k), row_bytes = q8_row_bytes(k), blocks = kp / kQ8Block;
#pragma omp parallel for schedule(static) if (n * k > (1 << 18))
  for (int64_t r = 0; r < n; ++r) {
    const float* src = w + r * k;
    uint8_t* dst = out + r * row_bytes;
    float* scales = reinterpret_cast<float*>(dst + kp);  // kp is a multiple of 64: aligned as the row is
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t i0 = b * kQ8Block, i1 = std::min(i0 + kQ8Block, k);
      float amax = 0.f;
      for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(src[i]));
      const float scale = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
      std::memcpy(scales + b, &scale, sizeof(float));
      uint8_t* chunk = dst + b / 2 * kQ8Chunk;
      for (int64_t i = i0; i < i0 + kQ8Block; ++i) {
        const float q = i < i1 ? std::nearbyint(src[i] * inv) : 0.f;
        const int qi = static_cast<int>(std::clamp(q, -127.f, 127.f));
        chunk[q8_chunk_position(i - b / 2 * kQ8Chunk)] = static_cast<uint8_t>(qi + kQ8Offset);
      }
    }
  }
}

float q8_dequantize(const uint8_t* packed, int64_t k, int64_t r, int64_t i) {
  const int64_t kp = q8_padded_k(k);
  const uint8_t* row = packed + r * q8_row_bytes(k);
  float scale;
  std::memcpy(&scale, row + kp + i / kQ8Block * sizeof(float), sizeof(float));
  const int q = static_cast<int>(row[i / kQ8Chunk * kQ8Chunk + q8_chunk_position(i % kQ8Chunk)]) - kQ8Offset;
  return static_cast<float>(q) * scale;
}

}  // namespace linspec::kernels
