// Caching device allocator behind the CUDA backend's memory table (kernels/cuda/memory.cu): kernels/caching_allocator.h
// over cudaMalloc, which is slow, and cudaFree, which synchronises the device. Blocks are reused immediately: safe
// because every linspec kernel runs on one stream (see common.cuh). When cudaMalloc fails, the cache is released and
// the allocation retried once.
// LINSPEC_CUDA_NO_CACHE=1 in the environment turns caching off (plain cudaMalloc/cudaFree, e.g. for compute-sanitizer).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/caching_allocator.h"

namespace linspec::kernels::cuda {

using AllocatorStats = kernels::AllocatorStats;

// The size a request is rounded to: multiples of 512 B up to 1 MiB, of 2 MiB above.
size_t allocator_round_size(size_t bytes);

void* cached_malloc(size_t bytes);
void cached_free(void* p);
// Returns every cached block to the driver.
void empty_cache();
AllocatorStats allocator_stats();
void reset_allocator_peak();

}  // namespace linspec::kernels::cuda
