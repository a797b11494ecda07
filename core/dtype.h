// Element types and their conversions (bf16/f16 are storage types; compute is f32 or f64).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace linspec {

// Q8 is not an element type: a Q8 tensor holds weight rows packed as int8 blocks with their scales
// (kernels/q8_format.h); its shape counts bytes, and only the Q8 GEMM reads it.
enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, Q8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
DType dtype_from_name(const std::string& name);  // throws InputError on unknown names
inline bool is_floating(DType t) { return t == DType::F32 || t == DType::F64 || t == DType::BF16 || t == DType::F16; }

// bf16: upper half of an IEEE f32, round-to-nearest-even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// IEEE binary16 (F16 in GGUF/safetensors), exact for all finite values, subnormals included.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Bulk conversions between any two floating storage types (vectorised where it matters). Both pointers must be
// aligned to their element size (tensor storage always is); bytes read from a file at an arbitrary offset go through
// an aligned copy first (model/formats/safetensors.cpp), since a misaligned uint16_t load is undefined behaviour.
void convert_floats(const void* src, DType src_type, void* dst, DType dst_type, size_t count);

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };

}  // namespace linspec
