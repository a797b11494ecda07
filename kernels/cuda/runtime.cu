// CUDA runtime surface: device memory (through the caching allocator), copies, one elementwise kernel and a cuBLAS
// GEMM; also the error checks and the cuBLAS handle the other kernel files share (kernels/cuda/common.cuh).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_runtime.h"

namespace linspec::kernels::cuda {
namespace detail {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}
void check_blas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cuBLAS error in ") + what + ": " + std::to_string(static_cast<int>(s)));
}
cublasHandle_t blas_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t handle;
    check_blas(cublasCreate(&handle), "cublasCreate");
    return handle;
  }();
  return h;
}
}  // namespace detail

namespace {
using detail::check;
using detail::check_blas;
using detail::blas_handle;

__global__ void axpy_kernel(float a, const float* x, float* y, size_t n) {
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] += a * x[i];
}
}  // namespace

bool built_with_cuda() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

void* malloc_device(size_t bytes) { return cached_malloc(bytes); }

void free_device(void* p) { cached_free(p); }

void copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes) {
  cudaMemcpyKind kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  check(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy");
}

void memset_zero(void* p, size_t bytes) { check(cudaMemset(p, 0, bytes), "cudaMemset"); }
void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

void axpy_f32(float a, const float* x, float* y, size_t n) {
  if (n == 0) return;
  const unsigned threads = 256;
  const unsigned blocks = static_cast<unsigned>((n + threads - 1) / threads);
  axpy_kernel<<<blocks, threads>>>(a, x, y, n);
  check(cudaGetLastError(), "axpy_kernel");
}

void gemm_f32(const float* a, const float* b, float* c, int m, int n, int k) {
  // Row-major C = A B is column-major C^T = B^T A^T: swap operands instead of transposing.
  const float one = 1.f, zero = 0.f;
  check_blas(cublasSgemm(blas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b, n, a, k, &zero, c, n), "cublasSgemm");
}

}  // namespace linspec::kernels::cuda
