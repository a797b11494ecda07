// ggml tensor types (numbered as in ggml.h / GGUF) and their dequantisation to f32, bit-exact with ggml's
// reference (dequantize_row_*) kernels.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace linspec::ggml {

enum class Type : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
};

struct TypeInfo {
  Type type;
  const char* name;
  int64_t block_size;   // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  bool dequantizable;   // linspec has a kernel for it
};

// Layout of a known type id, nullopt for ids ggml does not define (the caller reports the file and tensor).
std::optional<TypeInfo> type_info(uint32_t id);

// Dequantises `n` elements (a multiple of the block size) from raw blocks into f32. The type must be dequantizable.
void dequantize(Type type, const void* blocks, float* out, int64_t n);

}  // namespace linspec::ggml
