#include "core/device.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "kernels/cuda_runtime.h"

namespace linspec {
namespace {
// Activations and gradients of long sequences are tens of MB each; glibc would mmap/munmap every one of them
// and pay fresh page faults on each training step. Keeping them on the heap lets freed blocks be reused.
const bool heap_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
}();

struct Counters {
  std::atomic<int64_t> current{0}, peak{0}, allocations{0};
};
Counters& counters(Device d) {
  static Counters c[2];
  return c[static_cast<int>(d)];
}
void count_alloc(Device d, size_t bytes) {
  auto& c = counters(d);
  int64_t now = c.current.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  int64_t prev = c.peak.load();
  while (now > prev && !c.peak.compare_exchange_weak(prev, now)) {
  }
  c.allocations.fetch_add(1);
}
}  // namespace

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device device_from_name(const std::string& n) {
  if (n == "cpu") return Device::CPU;
  if (n == "cuda" || n == "gpu") return Device::CUDA;
  throw_input_error("unknown device '", n, "' (expected cpu or cuda)");
}

bool cuda_available() { return kernels::cuda::device_count() > 0; }

void require_cuda(const char* what) {
  if (!kernels::cuda::built_with_cuda())
    throw_input_error(what, ": CUDA was requested but this linspec was built without CUDA (configure with -DLINSPEC_CUDA=ON)");
  if (kernels::cuda::device_count() <= 0)
    throw_input_error(what, ": CUDA was requested but no CUDA device is visible");
}

void* device_alloc(Device d, size_t bytes) {
  void* p = nullptr;
  if (d == Device::CPU) {
    size_t rounded = (bytes + 63) / 64 * 64;
    p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!p) throw std::bad_alloc();
  } else {
    require_cuda("allocation");
    p = kernels::cuda::malloc_device(bytes);
  }
  count_alloc(d, bytes);
  return p;
}

void device_free(Device d, void* p, size_t bytes) {
  if (!p) return;
  if (d == Device::CPU) std::free(p);
  else kernels::cuda::free_device(p);
  counters(d).current.fetch_sub(static_cast<int64_t>(bytes));
}

void device_copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) {
  if (bytes == 0) return;
  if (dd == Device::CPU && sd == Device::CPU) std::memcpy(dst, src, bytes);
  else kernels::cuda::copy(dst, dd == Device::CUDA, src, sd == Device::CUDA, bytes);
}

void device_memset_zero(Device d, void* p, size_t bytes) {
  if (d == Device::CPU) std::memset(p, 0, bytes);
  else kernels::cuda::memset_zero(p, bytes);
}

MemoryStats memory_stats(Device d) {
  auto& c = counters(d);
  return {c.current.load(), c.peak.load(), c.allocations.load()};
}

void reset_peak_memory(Device d) {
  auto& c = counters(d);
  c.peak.store(c.current.load());
}

}  // namespace linspec
