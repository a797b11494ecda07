// Caching device allocator (see allocator.h): kernels/caching_allocator.h over cudaMalloc / cudaFree.
#include <cuda_runtime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/allocator.h"

namespace linspec::kernels::cuda {
namespace {

cudaError_t last_error = cudaSuccess;  // of the failed cudaMalloc, for the message

void* device_malloc(size_t size) {
  void* p = nullptr;
  last_error = cudaMalloc(&p, size);
  if (last_error == cudaSuccess) return p;
  cudaGetLastError();  // clear the sticky error
  return nullptr;
}
void device_free(void* p) { cudaFree(p); }
void device_fail(size_t size, int64_t in_use) {
  throw std::runtime_error("CUDA allocation of " + std::to_string(size) + " bytes failed: " +
                           cudaGetErrorString(last_error) + " (in use " + std::to_string(in_use) + " bytes)");
}

// Never destroyed: freeing device memory after the CUDA runtime has shut down at exit would fail.
CachingAllocator& allocator() {
  static CachingAllocator* a = [] {
    const char* off = std::getenv("LINSPEC_CUDA_NO_CACHE");
    return new CachingAllocator({&device_malloc, &device_free, &device_fail}, !(off && off[0] == '1'));
  }();
  return *a;
}

}  // namespace

size_t allocator_round_size(size_t bytes) { return caching_round_size(bytes); }
void* cached_malloc(size_t bytes) { return allocator().allocate(bytes); }
void cached_free(void* p) { allocator().release(p); }
void empty_cache() { allocator().empty(); }
AllocatorStats allocator_stats() { return allocator().stats(); }
void reset_allocator_peak() { allocator().reset_peak(); }

}  // namespace linspec::kernels::cuda
