// CUDA twins of kernels/matmul.h (same shapes and semantics; every pointer is device memory). f32/f64 through
// cuBLAS (no TF32: f32 stays f32), bf16 through cuBLASLt tensor cores with f32 accumulation.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace linspec::kernels::cuda {

using cpu::GemmShape;

// beta is 0 (overwrite) or 1 (accumulate into C), as on the CPU.
void gemm_f32(const GemmShape& s, const float* a, const float* b, float* c, float beta = 0.f);
void gemm_f64(const GemmShape& s, const double* a, const double* b, double* c, double beta = 0.0);
// bf16 bit patterns in, f32 out, f32 accumulation (cuBLASLt).
void gemm_bf16(const GemmShape& s, const uint16_t* a, const uint16_t* b, float* c, float beta = 0.f);
// bf16 in, bf16 out (rounded from the f32 accumulator): the bf16-activation path.
void gemm_bf16_out(const GemmShape& s, const uint16_t* a, const uint16_t* b, uint16_t* c, float beta = 0.f);
// f32 operands rounded to bf16 on the device (scratch from the caching allocator), then gemm_bf16.
void gemm_f32_via_bf16(const GemmShape& s, const float* a, const float* b, float* c, float beta = 0.f);

}  // namespace linspec::kernels::cuda
