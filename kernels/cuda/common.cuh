// Helpers shared by the CUDA kernel files (internal; include only from kernels/cuda/*.cu): error checks, the stream
// every kernel runs on, grid-stride launches of functors, warp/block reductions, deterministic device reductions and
// scratch buffers from the caching allocator.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/allocator.h"

namespace linspec::kernels::cuda::detail {

// Defined in runtime.cu.
void check(cudaError_t e, const char* what);
void check_blas(cublasStatus_t s, const char* what);
cublasHandle_t blas_handle();

// Every kernel, copy and cuBLAS call runs on the legacy default stream: work is ordered by program order, which is
// also what makes the caching allocator's immediate reuse of freed blocks safe.
inline cudaStream_t stream() { return 0; }
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

constexpr int kThreads = 256;

// −∞ usable in host and device code (std::numeric_limits is host-only without --expt-relaxed-constexpr).
template <typename T>
__host__ __device__ constexpr T neg_inf() {
  return -static_cast<T>(INFINITY);
}

// Blocks for n independent items; grid-stride loops cover anything beyond the cap.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t(1) << 20));
}

template <typename F>
__global__ void for_each_kernel(int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) f(i);
}

// Calls f(i) for i in [0, n) on the device (f is a functor with a __device__ operator()).
template <typename F>
void for_each(int64_t n, F f, const char* what) {
  if (n <= 0) return;
  for_each_kernel<<<grid_for(n), kThreads, 0, stream()>>>(n, f);
  check_launch(what);
}

template <typename T>
__device__ inline T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ inline T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32); every thread receives the result.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // the previous call's readers are done with `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? partial[lane] : T(0));
}

// ---- deterministic reductions: fixed partition, fixed order, double accumulation ----

constexpr int kReduceBlocks = 512;

template <typename F>
__global__ void reduce_partials_kernel(F value, int64_t n, double* partial) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  double acc = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    acc += static_cast<double>(value(i));
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename T>
__global__ void reduce_final_kernel(const double* partial, int count, T* out, bool accumulate) {
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = static_cast<T>(accumulate ? static_cast<double>(*out) + acc : acc);
}

// *out (device) = Σ_{i<n} value(i), or += with accumulate. Deterministic for a given n.
template <typename T, typename F>
void reduce_to_device(F value, int64_t n, T* out, bool accumulate, const char* what) {
  const int blocks = static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kReduceBlocks));
  double* partial = static_cast<double*>(cached_malloc(sizeof(double) * blocks));
  reduce_partials_kernel<<<blocks, kThreads, 0, stream()>>>(value, n, partial);
  check_launch(what);
  reduce_final_kernel<<<1, kThreads, 0, stream()>>>(partial, blocks, out, accumulate);
  check_launch(what);
  cached_free(partial);
}

// Σ_{i<n} value(i) returned to the host (synchronises with the stream).
template <typename F>
double reduce_to_host(F value, int64_t n, const char* what) {
  double* d = static_cast<double*>(cached_malloc(sizeof(double)));
  reduce_to_device(value, n, d, false, what);
  double h = 0;
  check(cudaMemcpy(&h, d, sizeof(double), cudaMemcpyDeviceToHost), what);
  cached_free(d);
  return h;
}

// Column sums out[j] (=, or += with accumulate) Σ_r value(r, j) over a [rows, cols] implicit matrix: blocks of 32
// columns × a fixed chunk of rows write partial sums, which a second pass adds in chunk order (deterministic).
template <typename T, typename F>
__global__ void column_partials_kernel(F value, int64_t rows, int64_t cols, int64_t rows_per_chunk, T* partial) {
  __shared__ T tile[8][33];
  const int64_t j = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(rows, r0 + rows_per_chunk);
  T acc = 0;
  if (j < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) acc += value(r, j);
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    T s = 0;
    for (int y = 0; y < 8; ++y) s += tile[y][threadIdx.x];
    partial[blockIdx.y * cols + j] = s;
  }
}

template <typename T>
__global__ void column_finish_kernel(const T* partial, int64_t chunks, int64_t cols, T* out, bool accumulate) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  T s = 0;
  for (int64_t c = 0; c < chunks; ++c) s += partial[c * cols + j];
  out[j] = accumulate ? out[j] + s : s;
}

template <typename T, typename F>
void column_sums(F value, int64_t rows, int64_t cols, T* out, bool accumulate, const char* what) {
  if (cols <= 0) return;
  const int64_t per_chunk = std::max<int64_t>(256, (rows + 65534) / 65535);
  const int64_t chunks = std::max<int64_t>(1, (rows + per_chunk - 1) / per_chunk);
  T* partial = static_cast<T*>(cached_malloc(sizeof(T) * chunks * cols));
  column_partials_kernel<T><<<dim3(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(chunks)),
                              dim3(32, 8), 0, stream()>>>(value, rows, cols, per_chunk, partial);
  check_launch(what);
  column_finish_kernel<<<grid_for(cols), kThreads, 0, stream()>>>(partial, chunks, cols, out, accumulate);
  check_launch(what);
  cached_free(partial);
}

// A device scratch array from the caching allocator, returned at scope exit (stream order makes that safe).
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : p_(static_cast<T*>(cached_malloc(sizeof(T) * static_cast<size_t>(std::max<int64_t>(n, 1))))) {}
  ~Scratch() { cached_free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return p_; }

 private:
  T* p_;
};

// Opts a kernel into more than the default 48 KiB of dynamic shared memory.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes, const char* what) {
  if (bytes > 48 * 1024)
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), what);
}

// A λ the kernels read from device memory (null: 1), so the host never synchronises to read it.
template <typename T>
__device__ inline T lambda_or_one(const T* p) {
  return p ? *p : T(1);
}

// The aug global term's factor for group g: 1 / (g·G) for g > 0 when `mean` (AugDims::global_scale), else 1.
template <typename T>
__device__ inline T group_mean_scale(bool mean, int64_t g, int64_t group) {
  return mean && g > 0 ? T(1) / static_cast<T>(g * group) : T(1);
}

}  // namespace linspec::kernels::cuda::detail

namespace linspec::kernels::cuda {
// f32 <-> bf16 on the device, bit-identical to linspec::f32_to_bf16 (defined in elementwise.cu; used by the GEMMs).
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
}  // namespace linspec::kernels::cuda
