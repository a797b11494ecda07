// CUDA runtime surface (device count and selection) and the error checks and cuBLAS handle the other kernel files
// share (kernels/cuda/common.cuh).
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

bool built_with_cuda() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

void set_device(int index) { detail::check(cudaSetDevice(index), "cudaSetDevice"); }

int current_device() {
  int d = -1;
  detail::check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

}  // namespace linspec::kernels::cuda
