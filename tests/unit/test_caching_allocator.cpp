// The caching allocator shared by the backends (kernels/caching_allocator.h), over a counting host source so it
// runs without a GPU: rounding, reuse of freed blocks, the 1/8 slack for large blocks, the cap on cached bytes,
// the release-and-retry on out-of-memory, foreign pointers; and the CPU backend's memory table on top of it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "core/tensor.h"
#include "kernels/caching_allocator.h"

namespace linspec::kernels {
namespace {

int g_mallocs = 0, g_frees = 0;
size_t g_fail_above = SIZE_MAX;  // the source "runs out" for requests above this while it holds any block
std::set<void*> g_held;

void* counting_malloc(size_t n) {
  if (n > g_fail_above && !g_held.empty()) return nullptr;
  ++g_mallocs;
  void* p = std::malloc(n);
  g_held.insert(p);
  return p;
}
void counting_free(void* p) {
  ++g_frees;
  g_held.erase(p);
  std::free(p);
}
void throwing_fail(size_t, int64_t) { throw std::bad_alloc(); }

struct CountingSource : ::testing::Test {
  void SetUp() override { g_mallocs = g_frees = 0, g_fail_above = SIZE_MAX; }
  CachingAllocator::Source source{&counting_malloc, &counting_free, &throwing_fail};
};

TEST_F(CountingSource, RoundsAndReusesFreedBlocks) {
  EXPECT_EQ(caching_round_size(0), 512u);
  EXPECT_EQ(caching_round_size(513), 1024u);
  EXPECT_EQ(caching_round_size((1u << 20) + 1), 2u << 20);
  CachingAllocator a(source, true);
  void* p = a.allocate(1000);
  a.release(p);
  void* q = a.allocate(900);  // same 1 KiB bucket
  EXPECT_EQ(q, p);
  EXPECT_EQ(a.stats().cache_hits, 1);
  EXPECT_EQ(g_mallocs, 1);
  void* big = a.allocate(8u << 20);
  a.release(big);
  EXPECT_EQ(a.allocate((8u << 20) - (512u << 10)), big);  // a large block up to 1/8 larger is reused
  void* other = a.allocate(4u << 20);                      // but not one twice the size
  EXPECT_NE(other, big);
  EXPECT_THROW(a.release(reinterpret_cast<void*>(0x1234)), std::logic_error);
  int x = 0;
  EXPECT_FALSE(a.release_if_owned(&x));
  a.release(q), a.release(big), a.release(other);
  a.empty();
  EXPECT_EQ(a.stats().cached_bytes, 0);
  EXPECT_EQ(g_frees, g_mallocs);
}

TEST_F(CountingSource, SizeClassesLoseAtMostAnEighthAboveOneMiB) {
  EXPECT_EQ(caching_size_class(513), 1024u);
  EXPECT_EQ(caching_size_class(1u << 20), 1u << 20);
  EXPECT_EQ(caching_size_class((1u << 20) + 1), (1u << 20) + (128u << 10));  // 1/8 of 1 MiB steps
  EXPECT_EQ(caching_size_class(2359296 + 1), 5u << 19);                     // just above 2.25 MiB -> 2.5 MiB
  EXPECT_EQ(caching_size_class(100u << 20), 104u << 20);                    // 8 MiB steps up to 128 MiB
  for (size_t bytes = (1u << 20) + 1; bytes < (size_t(1) << 34); bytes = bytes * 13 / 7 + 12345) {
    const size_t c = caching_size_class(bytes);
    EXPECT_GE(c, bytes);
    EXPECT_LE(c - bytes, bytes / 8) << bytes;
    EXPECT_EQ(caching_size_class(c), c) << bytes;  // a class is its own class
  }
  // The allocator files blocks under the source's classes.
  CachingAllocator::Source classes{&counting_malloc, &counting_free, &throwing_fail, &caching_size_class};
  CachingAllocator a(classes, true);
  void* p = a.allocate(2359296);  // [4, 256, 576] f32: exactly 2.25 MiB, a class of its own
  EXPECT_EQ(a.stats().in_use_bytes, int64_t(9u << 18));
  a.release(p);
  EXPECT_EQ(a.allocate(2359296 - 4096), p);
  a.release(p);
  a.empty();
}

TEST_F(CountingSource, CapSendsBlocksBackAndOutOfMemoryReleasesTheCache) {
  CachingAllocator capped(source, true, /*max_cached_bytes=*/4 << 20);
  void* a = capped.allocate(4u << 20);
  void* b = capped.allocate(4u << 20);
  capped.release(a);
  capped.release(b);  // the cache is full: back to the source
  EXPECT_EQ(capped.stats().cached_bytes, 4 << 20);
  EXPECT_EQ(g_frees, 1);

  // The source fails large requests while it holds any block: the cached one is given back and the retry succeeds.
  g_fail_above = 6u << 20;
  void* c = capped.allocate(16u << 20);
  EXPECT_NE(c, nullptr);
  EXPECT_EQ(capped.stats().releases, 1);
  EXPECT_EQ(capped.stats().cached_bytes, 0);
  // A live block cannot be given back: the retry fails too and the source's failure is thrown.
  EXPECT_THROW(capped.allocate(16u << 20), std::bad_alloc);
  g_fail_above = SIZE_MAX;
  capped.release(c);
  capped.empty();
  EXPECT_EQ(g_frees, g_mallocs);
}

TEST(CpuMemory, LargeTensorsReuseTheirBuffers) {
  const void* first = nullptr;
  {
    Tensor t = Tensor::empty({4 << 20}, DType::F32);  // 16 MiB: cached
    first = t.raw_data();
  }
  Tensor again = Tensor::empty({(4 << 20) - 1000}, DType::F32);
  EXPECT_EQ(again.raw_data(), first);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.raw_data()) % 64, 0u);
  Tensor small = Tensor::zeros({10}, DType::F32);  // small blocks come from the C heap, freed there
  EXPECT_EQ(small.to_vector<float>(), std::vector<float>(10, 0.0f));
}

}  // namespace
}  // namespace linspec::kernels
