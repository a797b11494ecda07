// Host memory for the CPU backend: 64-byte aligned blocks, strided gathers and format conversions.
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/backend.h"
#include "kernels/caching_allocator.h"

namespace linspec::kernels::cpu {
namespace {
// Small blocks come from glibc, which reuses them well; never trimming its heap keeps the pages a step freed for the
// next step (a trimmed heap re-faulted ~the activations' size every step: 150K faults per SmolLM2-shape step).
// Blocks above 1 MiB go through the caching allocator (kernels/caching_allocator.h): glibc maps every block above
// 32 MiB afresh (logits, their gradient, the LM head's GEMM operands: ~16K page faults, 0.1–0.3 s per SmolLM2-shape
// step) and returns it on free. LINSPEC_HOST_CACHE_MB bounds what the cache keeps (default 4096).
constexpr size_t kCachedFrom = size_t(1) << 20;

const bool heap_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum: smaller blocks stay on the heap
  mallopt(M_TRIM_THRESHOLD, -1);        // -1: never trim
  return true;
}();

void* aligned_or_null(size_t bytes) { return std::aligned_alloc(64, std::max<size_t>((bytes + 63) / 64 * 64, 64)); }

// Large blocks start on 2 MiB boundaries, backed by transparent huge pages where the kernel allows it (madvise
// mode): fewer TLB misses in the memory-bound passes over activations and gradients. Sizes are the allocator's size
// classes (caching_size_class), not whole huge pages: the tail past the last 2 MiB boundary keeps 4 KiB pages.
void* huge_or_null(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  // posix_memalign, not aligned_alloc: the size need not be a multiple of the alignment (ASan refuses that).
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, (bytes + 4095) / 4096 * 4096) != 0) return nullptr;
  madvise(p, bytes, MADV_HUGEPAGE);  // advice only: a kernel without THP ignores it
  return p;
}
void host_fail(size_t, int64_t) { throw std::bad_alloc(); }

CachingAllocator& large_blocks() {
  static CachingAllocator* a = [] {
    const char* mb = std::getenv("LINSPEC_HOST_CACHE_MB");
    const int64_t cap = (mb ? std::atoll(mb) : 4096) << 20;
    return new CachingAllocator({&huge_or_null, &std::free, &host_fail, &caching_size_class}, cap > 0, cap);
  }();
  return *a;
}

void* alloc(size_t bytes) {
  if (bytes > kCachedFrom) return large_blocks().allocate(bytes);
  void* p = aligned_or_null(bytes);
  if (!p) throw std::bad_alloc();
  return p;
}
void release(void* p) {
  if (!large_blocks().release_if_owned(p)) std::free(p);
}
void memset_zero(void* p, size_t bytes) { std::memset(p, 0, bytes); }
void copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

void fill(void* dst, const void* pattern, size_t es, int64_t n) {
  char* d = static_cast<char*>(dst);
  for (int64_t i = 0; i < n; ++i) std::memcpy(d + i * es, pattern, es);
}

void gather_strided(const void* base_v, void* dst_v, size_t es, int nd, const int64_t* shape, const int64_t* strides) {
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) n *= shape[d];
  if (n == 0) return;
  const char* base = static_cast<const char*>(base_v);
  char* dst = static_cast<char*>(dst_v);
  // The innermost dimension is copied as a run when its stride is 1.
  const int64_t inner = nd ? shape[nd - 1] : 1;
  const int64_t inner_stride = nd ? strides[nd - 1] : 1;
  const int64_t outer = n / std::max<int64_t>(inner, 1);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, off = 0;
    for (int d = nd - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    char* out = dst + o * inner * es;
    const char* in = base + off * static_cast<int64_t>(es);
    if (inner_stride == 1)
      std::memcpy(out, in, inner * es);
    else
      for (int64_t i = 0; i < inner; ++i) std::memcpy(out + i * es, in + i * inner_stride * es, es);
  }
}

void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, int64_t rows) {
#pragma omp parallel for schedule(static) if (rows * width > (1 << 20))
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
}

void convert(const void* src, DType st, void* dst, DType dt, int64_t n) {
  convert_floats(src, st, dst, dt, static_cast<size_t>(n));
}
void synchronize() {}
}  // namespace

void fill_memory(Backend& b) {
  b.memory = {&alloc, &release,        &memset_zero, &copy,    &copy,       &copy,
              &fill,  &gather_strided, &copy_2d,     &convert, &synchronize};
}

}  // namespace linspec::kernels::cpu
