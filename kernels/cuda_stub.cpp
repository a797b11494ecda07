// CPU-only builds: the CUDA surface reports "not built" and refuses to allocate.
#ifndef LINSPEC_WITH_CUDA
#include <stdexcept>

#include "kernels/cuda_runtime.h"

namespace linspec::kernels::cuda {
namespace {
[[noreturn]] void unavailable() { throw std::runtime_error("linspec was built without CUDA"); }
}  // namespace
bool built_with_cuda() { return false; }
int device_count() { return 0; }
void* malloc_device(size_t) { unavailable(); }
void free_device(void*) {}
void copy(void*, bool, const void*, bool, size_t) { unavailable(); }
void memset_zero(void*, size_t) { unavailable(); }
void synchronize() {}
void axpy_f32(float, const float*, float*, size_t) { unavailable(); }
void gemm_f32(const float*, const float*, float*, int, int, int) { unavailable(); }
}  // namespace linspec::kernels::cuda
#endif
