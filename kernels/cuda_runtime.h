// The CUDA runtime surface the rest of linspec sees. Without the CUDA backend these are stubs
// (kernels/cuda_stub.cpp) so CPU-only builds link; with it, kernels/cuda/runtime.cu implements them.
#pragma once
#include <cstddef>

namespace linspec::kernels::cuda {

bool built_with_cuda();
int device_count();  // 0 when not built with CUDA or no GPU is visible
void* malloc_device(size_t bytes);
void free_device(void* p);
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
void memset_zero(void* p, size_t bytes);
void synchronize();

// y = a * x + y on device memory (f32): the first real kernel, used by the CUDA smoke test.
void axpy_f32(float a, const float* x, float* y, size_t n);
// C[m,n] = A[m,k] * B[k,n], row-major f32, through cuBLAS.
void gemm_f32(const float* a, const float* b, float* c, int m, int n, int k);

}  // namespace linspec::kernels::cuda
