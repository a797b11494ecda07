// f32 activations × a weight W [n, k] read row by row on a GPU (`--weights f32` and `--weights bf16`), the CUDA twin
// of kernels/cpu/matmul_weight_rows.cpp: one warp per output, lanes over the inputs, a fixed warp reduction — the same
// result for an output whatever M is, so tree verification reproduces decoding bit for bit (cuBLAS may block
// differently for different M).
#include <cuda_bf16.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {

__device__ inline float weight_value(__nv_bfloat16 w) { return __bfloat162float(w); }
__device__ inline float weight_value(float w) { return w; }

template <typename W>
__global__ void weight_row_dot(const float* a, const W* w, int64_t n, int64_t k, float* c) {
  const int64_t col = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32, row = blockIdx.y;
  const int lane = threadIdx.x % 32;
  if (col >= n) return;
  const float* ar = a + row * k;
  const W* wr = w + col * k;
  float sum = 0.f;
  for (int64_t i = lane; i < k; i += 32) sum += ar[i] * weight_value(wr[i]);
  sum = detail::warp_sum(sum);
  if (lane == 0) c[row * n + col] = sum;
}

template <typename W>
void gemm_weight_rows(int64_t m, int64_t n, int64_t k, const float* a, const W* w, float* c, const char* name) {
  if (m == 0 || n == 0) return;
  constexpr int kWarps = 4;
  const dim3 grid(static_cast<unsigned>((n + kWarps - 1) / kWarps), static_cast<unsigned>(m));
  weight_row_dot<<<grid, kWarps * 32, 0, detail::stream()>>>(a, w, n, k, c);
  detail::check_launch(name);
}

}  // namespace

void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c) {
  gemm_weight_rows(m, n, k, a, reinterpret_cast<const __nv_bfloat16*>(w), c, "gemm_bf16_weight");
}

void gemm_f32_weight(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c) {
  gemm_weight_rows(m, n, k, a, w, c, "gemm_f32_weight");
}

}  // namespace linspec::kernels::cuda
