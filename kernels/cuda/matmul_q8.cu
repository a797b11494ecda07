// f32 activations × Q8 weights (kernels/q8_format.h) on a GPU: the `--weights int8` decode GEMM, the CUDA twin of
// kernels/cpu/matmul_q8.cpp. One thread per output: per 32-input block, 8 dp4a over the row's 4-byte groups (a
// panel's 16 rows sit side by side, so neighbouring threads read neighbouring words), scaled by s_w · s_a. The stored
// weight bytes are q + 128; XOR 0x80 turns each back into the signed q, so no offset correction is needed here. The
// order of a thread's sums does not depend on M: verification over N tree nodes reproduces N decode steps bit for
// bit.
#include "kernels/cuda/backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/q8_format.h"

namespace linspec::kernels::cuda {
namespace {

// One warp per (row, 32-block): the block's absmax scale and its rounded values, in natural order.
__global__ void quantize_activations(const float* a, int64_t m, int64_t k, int64_t blocks, int8_t* q, float* scale) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= m * blocks) return;
  const int64_t r = warp / blocks, b = warp % blocks, i = b * kQ8Block + lane;
  const float x = i < k ? a[r * k + i] : 0.f;
  const float amax = detail::warp_max(fabsf(x));
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  const float qf = fminf(fmaxf(rintf(x * inv), -127.f), 127.f);
  q[warp * kQ8Block + lane] = static_cast<int8_t>(qf);
  if (lane == 0) scale[warp] = amax / 127.f;
}

__global__ void q8_dot(const int8_t* qa, const float* sa, const uint8_t* w, int64_t m, int64_t n, int64_t k,
                       float* c) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, row = blockIdx.y;
  if (col >= n) return;
  const int64_t blocks = q8_blocks(k);
  const int* act = reinterpret_cast<const int*>(qa + row * blocks * kQ8Block);
  float sum = 0.f;
  for (int64_t b = 0; b < blocks; ++b) {
    int dot = 0;
    for (int g = 0; g < kQ8Groups; ++g) {
      const int wg = *reinterpret_cast<const int*>(w + q8_value_offset(n, k, col, b * kQ8Block + 4 * g));
      dot = __dp4a(wg ^ static_cast<int>(0x80808080u), act[b * kQ8Groups + g], dot);
    }
    const float ws = *reinterpret_cast<const float*>(w + q8_scale_offset(n, k, col, b));
    sum += static_cast<float>(dot) * (ws * sa[row * blocks + b]);
  }
  c[row * n + col] = sum;
}

}  // namespace

void gemm_q8(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w, float* c) {
  if (m == 0 || n == 0) return;
  const int64_t blocks = q8_blocks(k);
  detail::Scratch<int8_t> qa(m * blocks * kQ8Block);
  detail::Scratch<float> sa(m * blocks);
  quantize_activations<<<detail::grid_for(m * blocks * 32), detail::kThreads, 0, detail::stream()>>>(
      a, m, k, blocks, qa.get(), sa.get());
  detail::check_launch("gemm_q8 quantize");
  constexpr int kThreadsPerBlock = 128;
  const dim3 grid(static_cast<unsigned>((n + kThreadsPerBlock - 1) / kThreadsPerBlock), static_cast<unsigned>(m));
  q8_dot<<<grid, kThreadsPerBlock, 0, detail::stream()>>>(qa.get(), sa.get(), w, m, n, k, c);
  detail::check_launch("gemm_q8");
}

}  // namespace linspec::kernels::cuda
