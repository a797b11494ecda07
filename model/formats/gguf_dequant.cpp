// Dequantisation kernels for ggml block formats, written from the block layouts in ggml-common.h and the order
// of operations of ggml's dequantize_row_* reference code. FMA contraction is disabled so every product and sum
// is rounded separately, exactly as the reference C (and gguf-py's numpy) evaluates it.
#pragma GCC optimize("fp-contract=off")
#include "model/formats/gguf_dequant.h"

#include <array>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace linspec::ggml {
namespace {

constexpr int64_t QK = 32;    // block size of the legacy quants
constexpr int64_t QK_K = 256;  // super-block size of the k-quants

constexpr std::array<TypeInfo, 34> kTypes = {{
    {Type::F32, "F32", 1, 4, true},          {Type::F16, "F16", 1, 2, true},
    {Type::Q4_0, "Q4_0", 32, 18, true},      {Type::Q4_1, "Q4_1", 32, 20, true},
    {Type::Q5_0, "Q5_0", 32, 22, true},      {Type::Q5_1, "Q5_1", 32, 24, true},
    {Type::Q8_0, "Q8_0", 32, 34, true},      {Type::Q8_1, "Q8_1", 32, 40, false},
    {Type::Q2_K, "Q2_K", 256, 84, true},     {Type::Q3_K, "Q3_K", 256, 110, true},
    {Type::Q4_K, "Q4_K", 256, 144, true},    {Type::Q5_K, "Q5_K", 256, 176, true},
    {Type::Q6_K, "Q6_K", 256, 210, true},    {Type::Q8_K, "Q8_K", 256, 292, false},
    {Type::IQ2_XXS, "IQ2_XXS", 256, 66, false}, {Type::IQ2_XS, "IQ2_XS", 256, 74, false},
    {Type::IQ3_XXS, "IQ3_XXS", 256, 98, false}, {Type::IQ1_S, "IQ1_S", 256, 50, false},
    {Type::IQ4_NL, "IQ4_NL", 32, 18, true},  {Type::IQ3_S, "IQ3_S", 256, 110, false},
    {Type::IQ2_S, "IQ2_S", 256, 82, false},  {Type::IQ4_XS, "IQ4_XS", 256, 136, false},
    {Type::I8, "I8", 1, 1, false},           {Type::I16, "I16", 1, 2, false},
    {Type::I32, "I32", 1, 4, false},         {Type::I64, "I64", 1, 8, false},
    {Type::F64, "F64", 1, 8, false},         {Type::IQ1_M, "IQ1_M", 256, 56, false},
    {Type::BF16, "BF16", 1, 2, true},        {Type::TQ1_0, "TQ1_0", 256, 54, false},
    {Type::TQ2_0, "TQ2_0", 256, 66, false},  {static_cast<Type>(39), "MXFP4", 32, 17, false},
    {static_cast<Type>(40), "NVFP4", 64, 36, false}, {static_cast<Type>(41), "Q1_0", 128, 18, false},
}};

inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// ---- legacy 32-element blocks ----
// Q4_0: f16 d | 16 bytes of nibbles. Low nibbles are elements 0..15, high nibbles 16..31; value (q - 8) * d.
void q4_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + QK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}
// Q4_1: f16 d | f16 m | nibbles; value q * d + m.
void q4_1(const uint8_t* b, float* y) {
  const float d = half(b), m = half(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + QK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}
// Q5_0: f16 d | u32 high bits | nibbles; bit j of qh is the 5th bit of element j.
void q5_0(const uint8_t* b, float* y) {
  const float d = half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < QK / 2; ++j) {
    const int h0 = ((qh >> j) << 4) & 0x10;
    const int h1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - 16) * d;
    y[j + QK / 2] = static_cast<float>(((qs[j] >> 4) | h1) - 16) * d;
  }
}
// Q5_1: f16 d | f16 m | u32 high bits | nibbles; value q * d + m.
void q5_1(const uint8_t* b, float* y) {
  const float d = half(b), m = half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < QK / 2; ++j) {
    const int h0 = ((qh >> j) << 4) & 0x10;
    const int h1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>((qs[j] & 0x0F) | h0) * d + m;
    y[j + QK / 2] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
  }
}
// Q8_0: f16 d | 32 int8.
void q8_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// IQ4_NL: f16 d | 16 bytes of nibbles (low: elements 0..15, high: 16..31), each an index into a fixed non-linear
// grid of 16 int8 levels (denser near zero, where weights are); value d * level.
constexpr std::array<int8_t, 16> kIq4nlLevels = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                 1,    13,   25,  38,  53,  69,  89,  113};
void iq4_nl(const uint8_t* b, float* y) {
  const float d = half(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = d * static_cast<float>(kIq4nlLevels[qs[j] & 0x0F]);
    y[j + QK / 2] = d * static_cast<float>(kIq4nlLevels[qs[j] >> 4]);
  }
}

// ---- k-quants: 256-element super-blocks ----
// Q2_K and Q3_K share a quant layout: 64 bytes hold four 2-bit fields each; element 128h + 32j + l (h < 2, j < 4,
// l < 32) is bits 2j..2j+1 of byte 32h + l. Every 16 consecutive elements share one sub-block scale.
inline int two_bits(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3; }

// Q2_K: 16 scale bytes (low nibble: scale, high nibble: min) | 64 quant bytes | f16 d | f16 dmin;
// value (d * scale) * q - (dmin * min).
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = half(b + 80), dmin = half(b + 82);
  for (int s = 0; s < 16; ++s) {
    const float dl = d * static_cast<float>(scales[s] & 0x0F), ml = dmin * static_cast<float>(scales[s] >> 4);
    for (int e = 16 * s; e < 16 * s + 16; ++e) y[e] = dl * static_cast<float>(two_bits(qs, e)) - ml;
  }
}
// Q3_K: 32 bytes of third bits (element e: bit e / 32 of byte e % 32; a clear bit subtracts 4) | 64 quant bytes |
// 12 bytes of 16 six-bit scales stored with an offset of 32 | f16 d; value (d * (scale - 32)) * q.
// Scale s: low nibble from byte s % 8 (low half for s < 8, high half after), top two bits from byte 8 + s % 4 at bit
// 2 * (s / 4).
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = half(b + 108);
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
    const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    const float dl = d * static_cast<float>((low | (high << 4)) - 32);
    for (int e = 16 * s; e < 16 * s + 16; ++e) {
      const int q = two_bits(qs, e) - ((hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
      y[e] = dl * static_cast<float>(q);
    }
  }
}
// 12 bytes hold 8 six-bit scales and 8 six-bit mins (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}
// Q4_K: f16 d | f16 dmin | 12 scale bytes | 128 nibble bytes. Each 64 elements: 32 low nibbles, 32 high nibbles.
void q4_k(const uint8_t* b, float* y) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
    uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}
// Q5_K: as Q4_K plus 32 bytes of fifth bits (two bits per 64-element chunk in each byte).
void q5_k(const uint8_t* b, float* y) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}
// Q6_K: 128 bytes low nibbles | 64 bytes high 2-bit pairs | 16 int8 scales | f16 d; value d * scale * (q - 32).
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = static_cast<int8_t>((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = static_cast<int8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

template <void (*Kernel)(const uint8_t*, float*)>
void blocks(const void* src, float* out, int64_t n, int64_t block_size, int64_t block_bytes) {
  const auto* p = static_cast<const uint8_t*>(src);
  const int64_t nb = n / block_size;
#pragma omp parallel for schedule(static) if (nb > 4096)
  for (int64_t i = 0; i < nb; ++i) Kernel(p + i * block_bytes, out + i * block_size);
}

}  // namespace

std::optional<TypeInfo> type_info(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return t;
  return std::nullopt;
}

void dequantize(Type type, const void* src, float* out, int64_t n) {
  auto info = type_info(static_cast<uint32_t>(type));
  LINSPEC_CHECK(info && info->dequantizable, "dequantize: no kernel for ggml type ", static_cast<uint32_t>(type));
  LINSPEC_CHECK(n % info->block_size == 0, "dequantize: ", n, " elements is not a multiple of the block size");
  const int64_t bs = info->block_size, bb = info->block_bytes;
  switch (type) {
    case Type::F32: std::memcpy(out, src, static_cast<size_t>(n) * 4); return;
    case Type::F16: convert_floats(src, DType::F16, out, DType::F32, static_cast<size_t>(n)); return;
    case Type::BF16: convert_floats(src, DType::BF16, out, DType::F32, static_cast<size_t>(n)); return;
    case Type::Q4_0: blocks<q4_0>(src, out, n, bs, bb); return;
    case Type::Q4_1: blocks<q4_1>(src, out, n, bs, bb); return;
    case Type::Q5_0: blocks<q5_0>(src, out, n, bs, bb); return;
    case Type::Q5_1: blocks<q5_1>(src, out, n, bs, bb); return;
    case Type::Q8_0: blocks<q8_0>(src, out, n, bs, bb); return;
    case Type::IQ4_NL: blocks<iq4_nl>(src, out, n, bs, bb); return;
    case Type::Q2_K: blocks<q2_k>(src, out, n, bs, bb); return;
    case Type::Q3_K: blocks<q3_k>(src, out, n, bs, bb); return;
    case Type::Q4_K: blocks<q4_k>(src, out, n, bs, bb); return;
    case Type::Q5_K: blocks<q5_k>(src, out, n, bs, bb); return;
    case Type::Q6_K: blocks<q6_k>(src, out, n, bs, bb); return;
    default: break;
  }
  LINSPEC_CHECK(false, "dequantize: unhandled ggml type ", info->name);
}

}  // namespace linspec::ggml
