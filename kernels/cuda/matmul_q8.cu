// f32 activations × Q8 weights (kernels/q8_format.h) on a GPU: the `--weights int8` decode GEMM, the CUDA twin of
// kernels/cpu/matmul_q8.cpp. One warp per output: each lane takes the 4-byte groups lane, lane + 32, ... of the
// row, an int8 dot product (dp4a) per group, scaled by its block's s_w · s_a. The stored weight bytes are q + 128;
// XOR 0x80 turns each back into the signed q, so no offset correction is needed here. The warp and the order of
// its sums do not depend on M: verification over N tree nodes reproduces N decode steps bit for bit.
#include "kernels/cuda/backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/q8_format.h"

namespace linspec::kernels::cuda {
namespace {

// One warp per (row, 32-block): the block's absmax scale, the rounded values in the interleaved chunk layout.
__global__ void quantize_activations(const float* a, int64_t m, int64_t k, int64_t kp, int8_t* q, float* scale) {
  const int64_t blocks = kp / kQ8Block;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= m * blocks) return;
  const int64_t r = warp / blocks, b = warp % blocks, i = b * kQ8Block + lane;
  const float x = i < k ? a[r * k + i] : 0.f;
  const float amax = detail::warp_max(fabsf(x));
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  const float qf = fminf(fmaxf(rintf(x * inv), -127.f), 127.f);
  const int64_t chunk = b / 2 * kQ8Chunk, within = (b % 2) * kQ8Block + lane;
  q[r * kp + chunk + q8_chunk_position(within)] = static_cast<int8_t>(qf);
  if (lane == 0) scale[r * blocks + b] = amax / 127.f;
}

__global__ void q8_dot(const int8_t* qa, const float* sa, const uint8_t* w, int64_t m, int64_t n, int64_t kp,
                       int64_t row_bytes, float* c) {
  const int64_t col = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32, row = blockIdx.y;
  const int lane = threadIdx.x % 32;
  if (col >= n) return;
  const int64_t blocks = kp / kQ8Block, groups = kp / 4;
  const uint8_t* wr = w + col * row_bytes;
  const float* ws = reinterpret_cast<const float*>(wr + kp);
  const int* wg = reinterpret_cast<const int*>(wr);
  const int* ag = reinterpret_cast<const int*>(qa + row * kp);
  float sum = 0.f;
  for (int64_t g = lane; g < groups; g += 32) {
    const int64_t block = g / 16 * 2 + g % 2;  // 16 groups per chunk, alternating between its two blocks
    const int dot = __dp4a(wg[g] ^ static_cast<int>(0x80808080u), ag[g], 0);
    sum += static_cast<float>(dot) * (ws[block] * sa[row * blocks + block]);
  }
  sum = detail::warp_sum(sum);
  if (lane == 0) c[row * n + col] = sum;
}

}  // namespace

void gemm_q8(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w, float* c) {
  if (m == 0 || n == 0) return;
  const int64_t kp = q8_padded_k(k), blocks = kp / kQ8Block;
  detail::Scratch<int8_t> qa(m * kp);
  detail::Scratch<float> sa(m * blocks);
  quantize_activations<<<detail::grid_for(m * blocks * 32), detail::kThreads, 0, detail::stream()>>>(
      a, m, k, kp, qa.get(), sa.get());
  detail::check_launch("gemm_q8 quantize");
  constexpr int kWarps = 4;
  const dim3 grid(static_cast<unsigned>((n + kWarps - 1) / kWarps), static_cast<unsigned>(m));
  q8_dot<<<grid, kWarps * 32, 0, detail::stream()>>>(qa.get(), sa.get(), w, m, n, kp, q8_row_bytes(k), c);
  detail::check_launch("gemm_q8");
}

}  // namespace linspec::kernels::cuda
