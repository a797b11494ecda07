// Caching device allocator (see allocator.h): size-bucketed free lists over cudaMalloc.
#include <cuda_runtime.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/allocator.h"

namespace linspec::kernels::cuda {
namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // requests up to 1 MiB
constexpr size_t kSmallQuantum = 512;
constexpr size_t kLargeQuantum = size_t(2) << 20;

class Allocator {
 public:
  Allocator() {
    const char* off = std::getenv("LINSPEC_CUDA_NO_CACHE");
    caching_ = !(off && off[0] == '1');
  }

  void* allocate(size_t bytes) {
    const size_t size = allocator_round_size(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    size_t block = size;
    void* p = caching_ ? take_cached(size, block) : nullptr;
    if (p) ++stats_.cache_hits;
    else p = device_malloc(size);
    live_[p] = block;
    stats_.in_use_bytes += static_cast<int64_t>(block);
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    return p;
  }

  void release(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) throw std::logic_error("cached_free: pointer was not allocated by the CUDA allocator");
    const size_t block = it->second;
    live_.erase(it);
    stats_.in_use_bytes -= static_cast<int64_t>(block);
    if (!caching_) {
      cudaFree(p);
      return;
    }
    free_[block].push_back(p);
    stats_.cached_bytes += static_cast<int64_t>(block);
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cache();
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_in_use_bytes = stats_.in_use_bytes;
  }

 private:
  // A cached block of exactly `size`, or for large requests the smallest cached block up to 1/8 larger; its size goes
  // to `block`.
  void* take_cached(size_t size, size_t& block) {
    auto it = free_.lower_bound(size);
    if (it == free_.end()) return nullptr;
    const size_t limit = size <= kSmallLimit ? size : size + size / 8;
    if (it->first > limit) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    block = it->first;
    stats_.cached_bytes -= static_cast<int64_t>(it->first);
    if (it->second.empty()) free_.erase(it);
    return p;
  }

  void* device_malloc(size_t size) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation && !free_.empty()) {
      cudaGetLastError();  // clear the error, give the cache back, try once more
      release_cache();
      e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("CUDA allocation of " + std::to_string(size) + " bytes failed: " +
                               cudaGetErrorString(e) + " (in use " + std::to_string(stats_.in_use_bytes) + " bytes)");
    }
    ++stats_.device_mallocs;
    return p;
  }

  void release_cache() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) cudaFree(p);
    free_.clear();
    stats_.cached_bytes = 0;
    ++stats_.releases;
  }

  std::mutex mu_;
  bool caching_ = true;
  std::map<size_t, std::vector<void*>> free_;  // rounded size -> free blocks
  std::unordered_map<void*, size_t> live_;     // handed-out block -> its size
  AllocatorStats stats_;
};

// Never destroyed: freeing device memory after the CUDA runtime has shut down at exit would fail.
Allocator& allocator() {
  static Allocator* a = new Allocator;
  return *a;
}

}  // namespace

size_t allocator_round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t q = bytes <= kSmallLimit ? kSmallQuantum : kLargeQuantum;
  return (bytes + q - 1) / q * q;
}

void* cached_malloc(size_t bytes) { return allocator().allocate(bytes); }
void cached_free(void* p) { allocator().release(p); }
void empty_cache() { allocator().empty(); }
AllocatorStats allocator_stats() { return allocator().stats(); }
void reset_allocator_peak() { allocator().reset_peak(); }

}  // namespace linspec::kernels::cuda
