// Batched GEMM: C[b] = op(A[b]) · op(B[b]) (+ beta · C[b]), row-major, contiguous operands.
// A is [batch, M, K] ([batch, K, M] when trans_a), B is [batch_b, K, N] ([batch_b, N, K] when trans_b)
// with batch_b == batch or 1 (broadcast), C is [batch, M, N]. beta is 0 (overwrite) or 1 (accumulate into C).
// CPU: oneDNN; CUDA: cuBLAS (f32 stays f32, no TF32) and cuBLASLt for bf16 with f32 accumulation.
#pragma once
#include <cstdint>

namespace linspec::kernels {

struct GemmShape {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  bool broadcast_b = false;  // B has a single batch entry shared by all of A's
};

struct MatmulKernels {
  void (*gemm_f32)(const GemmShape& s, const float* a, const float* b, float* c, float beta);
  // bf16 bit patterns in, f32 accumulation and f32 out.
  void (*gemm_bf16)(const GemmShape& s, const uint16_t* a, const uint16_t* b, float* c, float beta);
  // f32 inputs rounded to bf16 on the fly (scratch buffers reused across calls), then gemm_bf16.
  void (*gemm_f32_via_bf16)(const GemmShape& s, const float* a, const float* b, float* c, float beta);
  // Double precision: the gradient-check path and a reference for tests.
  void (*gemm_f64)(const GemmShape& s, const double* a, const double* b, double* c, double beta);
  // bf16 in, bf16 out (rounded from the f32 accumulator): the bf16-activation path (CUDA only so far).
  void (*gemm_bf16_out)(const GemmShape& s, const uint16_t* a, const uint16_t* b, uint16_t* c, float beta);
  // c [m, n] = a [m, k] · Wᵀ for a weight W [n, k] packed in the Q8 format (kernels/q8_format.h): the activations
  // are quantised per 32-block on the fly, int8 dot products, f32 out. c[i, j] must not depend on m (the
  // batch-invariance that makes speculative verification reproduce decoding exactly). The inference path only.
  void (*gemm_q8)(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w_packed, float* c) = nullptr;
  // c [m, n] = a [m, k] · Wᵀ for a bf16 weight W [n, k] (bit patterns), f32 activations unrounded, f32 out; like
  // gemm_q8, c[i, j] must not depend on m. The `--weights bf16` inference path.
  void (*gemm_bf16_weight)(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c) = nullptr;
  // The same for an f32 weight: the `--weights f32` inference path (ops::MatmulPrecision::F32BatchInvariant).
  void (*gemm_f32_weight)(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c) = nullptr;
};

}  // namespace linspec::kernels
