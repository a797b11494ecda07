// Caching device allocator behind the CUDA backend's memory table (kernels/cuda/memory.cu). cudaMalloc and
// cudaFree are slow and cudaFree synchronises the device, so freed blocks are kept in free lists bucketed by rounded size and handed out
// again. Blocks are reused immediately: safe because every linspec kernel runs on one stream (see common.cuh).
// When cudaMalloc fails, the cache is released and the allocation retried once. Thread-safe.
// LINSPEC_CUDA_NO_CACHE=1 in the environment turns caching off (plain cudaMalloc/cudaFree, e.g. for compute-sanitizer).
#pragma once
#include <cstddef>
#include <cstdint>

namespace linspec::kernels::cuda {

struct AllocatorStats {
  int64_t in_use_bytes = 0;       // bytes in blocks handed out (rounded sizes)
  int64_t peak_in_use_bytes = 0;  // since start or reset_allocator_peak()
  int64_t cached_bytes = 0;       // bytes in free lists
  int64_t device_mallocs = 0;     // cudaMalloc calls
  int64_t cache_hits = 0;         // allocations served from a free list
  int64_t releases = 0;           // times the cache was emptied (explicitly or on an out-of-memory retry)
};

// The size a request is rounded to: multiples of 512 B up to 1 MiB, of 2 MiB above.
size_t allocator_round_size(size_t bytes);

void* cached_malloc(size_t bytes);
void cached_free(void* p);
// Returns every cached block to the driver.
void empty_cache();
AllocatorStats allocator_stats();
void reset_allocator_peak();

}  // namespace linspec::kernels::cuda
