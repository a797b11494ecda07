// Float format conversions (f32/f64/bf16/f16/ints); lives in kernels/ because GEMMs convert operands.
#include <cmath>

#include "core/dtype.h"

namespace linspec {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absu < 0x38800000u) {                                               // f16 subnormal or zero
    float a;
    std::memcpy(&a, &absu, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t r = absu + 0xfffu + ((absu >> 13) & 1u);  // round to nearest even at bit 13
  return static_cast<uint16_t>(sign | ((r - 0x38000000u) >> 13));
}

template <typename Load, typename Store>
static void convert_loop(size_t n, Load load, Store store) {
#pragma omp parallel for schedule(static) if (n > (1u << 16))
  for (size_t i = 0; i < n; ++i) store(i, load(i));
}

void convert_floats(const void* src, DType st, void* dst, DType dt, size_t n) {
  auto load = [&](size_t i) -> double {
    switch (st) {
      case DType::F32: return static_cast<const float*>(src)[i];
      case DType::F64: return static_cast<const double*>(src)[i];
      case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::I32: return static_cast<const int32_t*>(src)[i];
      case DType::I64: return static_cast<double>(static_cast<const int64_t*>(src)[i]);
      case DType::Q8: break;  // packed rows: Tensor::to refuses them
    }
    return 0;
  };
  if (st == DType::F32 && dt == DType::BF16) {  // hot path: bf16 GEMM inputs
    const float* s = static_cast<const float*>(src);
    uint16_t* d = static_cast<uint16_t*>(dst);
#pragma omp parallel for schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]);
    return;
  }
  if (st == DType::BF16 && dt == DType::F32) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    float* d = static_cast<float*>(dst);
#pragma omp parallel for schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
    return;
  }
  switch (dt) {
    case DType::F32: convert_loop(n, load, [&](size_t i, double v) { static_cast<float*>(dst)[i] = static_cast<float>(v); }); break;
    case DType::F64: convert_loop(n, load, [&](size_t i, double v) { static_cast<double*>(dst)[i] = v; }); break;
    case DType::BF16: convert_loop(n, load, [&](size_t i, double v) { static_cast<uint16_t*>(dst)[i] = f32_to_bf16(static_cast<float>(v)); }); break;
    case DType::F16: convert_loop(n, load, [&](size_t i, double v) { static_cast<uint16_t*>(dst)[i] = f32_to_f16(static_cast<float>(v)); }); break;
    case DType::I32: convert_loop(n, load, [&](size_t i, double v) { static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); }); break;
    case DType::I64: convert_loop(n, load, [&](size_t i, double v) { static_cast<int64_t*>(dst)[i] = static_cast<int64_t>(v); }); break;
    case DType::Q8: break;  // packed rows: Tensor::to refuses them
  }
}

}  // namespace linspec
