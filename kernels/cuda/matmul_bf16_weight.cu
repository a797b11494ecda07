// f32 activations × bf16 weights on a GPU (`--weights bf16`), the CUDA twin of kernels/cpu/matmul_bf16_weight.cpp:
// one warp per output, lanes over the inputs, a fixed warp reduction — the same result for an output whatever M is,
// so tree verification reproduces decoding bit for bit (cuBLAS may block differently for different M).
#include <cuda_bf16.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {

__global__ void bf16_weight_dot(const float* a, const __nv_bfloat16* w, int64_t n, int64_t k, float* c) {
  const int64_t col = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32, row = blockIdx.y;
  const int lane = threadIdx.x % 32;
  if (col >= n) return;
  const float* ar = a + row * k;
  const __nv_bfloat16* wr = w + col * k;
  float sum = 0.f;
  for (int64_t i = lane; i < k; i += 32) sum += ar[i] * __bfloat162float(wr[i]);
  sum = detail::warp_sum(sum);
  if (lane == 0) c[row * n + col] = sum;
}

}  // namespace

void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c) {
  if (m == 0 || n == 0) return;
  constexpr int kWarps = 4;
  const dim3 grid(static_cast<unsigned>((n + kWarps - 1) / kWarps), static_cast<unsigned>(m));
  bf16_weight_dot<<<grid, kWarps * 32, 0, detail::stream()>>>(a, reinterpret_cast<const __nv_bfloat16*>(w), n, k, c);
  detail::check_launch("gemm_bf16_weight");
}

}  // namespace linspec::kernels::cuda
