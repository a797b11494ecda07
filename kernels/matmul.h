// Batched GEMM: C[b] = op(A[b]) · op(B[b]) (+ beta · C[b]), row-major, contiguous operands.
// A is [batch, M, K] ([batch, K, M] when trans_a), B is [batch_b, K, N] ([batch_b, N, K] when trans_b)
// with batch_b == batch or 1 (broadcast), C is [batch, M, N].
#pragma once
#include <cstdint>

namespace linspec::kernels::cpu {

struct GemmShape {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  bool broadcast_b = false;  // B has a single batch entry shared by all of A's
};

// oneDNN f32 GEMM; beta is 0 (overwrite) or 1 (accumulate into C).
void gemm_f32(const GemmShape& s, const float* a, const float* b, float* c, float beta = 0.f);
// oneDNN bf16 GEMM with f32 accumulation and f32 output; inputs are bf16 bit patterns.
void gemm_bf16(const GemmShape& s, const uint16_t* a, const uint16_t* b, float* c, float beta = 0.f);
// f32 inputs rounded to bf16 on the fly (scratch buffers are reused across calls).
void gemm_f32_via_bf16(const GemmShape& s, const float* a, const float* b, float* c, float beta = 0.f);
// Plain loops in double precision: the gradient-check path and a reference for tests.
void gemm_f64(const GemmShape& s, const double* a, const double* b, double* c, double beta = 0.0);

}  // namespace linspec::kernels::cpu
