// A caching allocator over a raw memory source, shared by the backends: freed blocks are kept in free lists bucketed
// by rounded size and handed out again, so a training step reuses the previous step's buffers instead of paying for
// fresh ones. On CUDA that saves cudaMalloc / the synchronising cudaFree (kernels/cuda/allocator.cu); on the CPU it
// saves the page faults of re-mapping every large buffer (glibc maps blocks above 32 MiB afresh on each malloc and
// unmaps them on free, whatever M_MMAP_THRESHOLD asks; kernels/cpu/memory.cpp).
// Blocks are reused at once: safe because each backend runs its kernels in order (one stream on CUDA).
// When the source runs out, the cache is released and the allocation retried once. Thread-safe.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace linspec::kernels {

struct AllocatorStats {
  int64_t in_use_bytes = 0;       // bytes in blocks handed out (rounded sizes)
  int64_t peak_in_use_bytes = 0;  // since start or reset_peak()
  int64_t cached_bytes = 0;       // bytes in free lists
  int64_t device_mallocs = 0;     // calls to the source
  int64_t cache_hits = 0;         // allocations served from a free list
  int64_t releases = 0;           // times the cache was emptied (explicitly or on an out-of-memory retry)
};

// The size a request is rounded to: multiples of 512 B up to 1 MiB, of 2 MiB above.
inline size_t caching_round_size(size_t bytes) {
  constexpr size_t kSmallLimit = size_t(1) << 20, kSmallQuantum = 512, kLargeQuantum = size_t(2) << 20;
  if (bytes == 0) bytes = 1;
  const size_t q = bytes <= kSmallLimit ? kSmallQuantum : kLargeQuantum;
  return (bytes + q - 1) / q * q;
}

// Size classes for a source without a coarse granularity of its own (host memory): multiples of 512 B up to 1 MiB,
// above that of 1/8 of the largest power of two not above the request, so at most 1/8 is lost to rounding (2 MiB
// steps turned a 2.3 MiB activation into 4 MiB: +40% resident memory on the SmolLM2-shape training step).
inline size_t caching_size_class(size_t bytes) {
  if (bytes <= (size_t(1) << 20)) return caching_round_size(bytes);
  size_t top = size_t(1) << 20;
  while (top <= bytes / 2) top <<= 1;
  const size_t q = top / 8;
  return (bytes + q - 1) / q * q;
}

class CachingAllocator {
 public:
  struct Source {
    void* (*malloc)(size_t bytes) = nullptr;  // nullptr when out of memory
    void (*free)(void* p) = nullptr;
    // Called when the source fails even with the cache released; must throw.
    void (*fail)(size_t bytes, int64_t in_use_bytes) = nullptr;
    // The size a request is rounded to (its free list): caching_round_size for a device whose allocations come in
    // 2 MiB units anyway (cudaMalloc), caching_size_class otherwise.
    size_t (*round)(size_t bytes) = &caching_round_size;
  };

  // caching = false: every request goes to the source (for sanitizers). Freed blocks beyond `max_cached_bytes` go
  // back to the source instead of into the cache.
  CachingAllocator(Source source, bool caching, int64_t max_cached_bytes = INT64_MAX)
      : src_(source), caching_(caching), max_cached_(max_cached_bytes) {}

  void* allocate(size_t bytes) {
    const size_t size = src_.round(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    size_t block = size;
    void* p = caching_ ? take_cached(size, block) : nullptr;
    if (p) {
      ++stats_.cache_hits;
    } else {
      p = from_source(size);
    }
    live_[p] = block;
    stats_.in_use_bytes += static_cast<int64_t>(block);
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    return p;
  }

  // False (and nothing done) when `p` did not come from allocate().
  bool release_if_owned(void* p) {
    if (!p) return true;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t block = it->second;
    live_.erase(it);
    stats_.in_use_bytes -= static_cast<int64_t>(block);
    if (!caching_ || stats_.cached_bytes + static_cast<int64_t>(block) > max_cached_) {
      src_.free(p);
    } else {
      free_[block].push_back(p);
      stats_.cached_bytes += static_cast<int64_t>(block);
    }
    return true;
  }

  void release(void* p) {
    if (!release_if_owned(p)) throw std::logic_error("caching allocator: pointer was not allocated here");
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
    const size_t limit = size <= (size_t(1) << 20) ? size : size + size / 8;
    if (it->first > limit) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    block = it->first;
    stats_.cached_bytes -= static_cast<int64_t>(it->first);
    if (it->second.empty()) free_.erase(it);
    return p;
  }

  void* from_source(size_t size) {
    void* p = src_.malloc(size);
    if (!p && !free_.empty()) {
      release_cache();  // give the cache back and try once more
      p = src_.malloc(size);
    }
    if (!p) {
      src_.fail(size, stats_.in_use_bytes);
      throw std::runtime_error("caching allocator: out of memory");  // fail() should have thrown
    }
    ++stats_.device_mallocs;
    return p;
  }

  void release_cache() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) src_.free(p);
    free_.clear();
    stats_.cached_bytes = 0;
    ++stats_.releases;
  }

  Source src_;
  bool caching_;
  int64_t max_cached_;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // rounded size -> free blocks
  std::unordered_map<void*, size_t> live_;     // handed-out block -> its size
  AllocatorStats stats_;
};

}  // namespace linspec::kernels
