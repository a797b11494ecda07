// Host packing of the Q8 weight format (kernels/q8_format.h).
#include "kernels/q8_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace linspec::kernels {

void q8_pack_rows(const float* w, int64_t n, int64_t k, uint8_t* out) {
  const int64_t blocks = q8_blocks(k);
#pragma omp parallel for schedule(static) if (n * k > (1 << 18))
  for (int64_t r = 0; r < n; ++r) {
    const float* src = w + r * k;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t i0 = b * kQ8Block, i1 = std::min(i0 + kQ8Block, k);
      float amax = 0.f;
      for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(src[i]));
      const float scale = amax / 127.f, inv = amax > 0.f ? 127.f / amax : 0.f;
      std::memcpy(out + q8_scale_offset(n, k, r, b), &scale, sizeof(float));
      for (int64_t i = i0; i < i0 + kQ8Block; ++i) {
        const float q = i < i1 ? std::nearbyint(src[i] * inv) : 0.f;
        const int qi = static_cast<int>(std::clamp(q, -127.f, 127.f));
        out[q8_value_offset(n, k, r, i)] = static_cast<uint8_t>(qi + kQ8Offset);
      }
    }
  }
}

float q8_dequantize(const uint8_t* packed, int64_t n, int64_t k, int64_t r, int64_t i) {
  float scale;
  std::memcpy(&scale, packed + q8_scale_offset(n, k, r, i / kQ8Block), sizeof(float));
  const int q = static_cast<int>(packed[q8_value_offset(n, k, r, i)]) - kQ8Offset;
  return static_cast<float>(q) * scale;
}

}  // namespace linspec::kernels
