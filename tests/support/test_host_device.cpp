#include "tests/support/test_host_device.h"

#include <atomic>
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/backend.h"
#include "kernels/cpu/backend.h"

namespace linspec::testing {
namespace {
std::atomic<int64_t> to_host{0}, from_host{0}, to_host_bytes{0}, from_host_bytes{0};

void copy_to_host(void* dst, const void* src, size_t bytes) {
  ++to_host;
  to_host_bytes += static_cast<int64_t>(bytes);
  std::memcpy(dst, src, bytes);
}
void copy_from_host(void* dst, const void* src, size_t bytes) {
  ++from_host;
  from_host_bytes += static_cast<int64_t>(bytes);
  std::memcpy(dst, src, bytes);
}

// Pinned host memory is ordinary memory here; the asynchronous upload is counted like any host -> device copy.
void* alloc_pinned_host(size_t bytes) { return std::malloc(std::max<size_t>(bytes, 1)); }
void free_pinned_host(void* p) { std::free(p); }

const kernels::Backend& test_host_backend() {
  static const kernels::Backend b = [] {
    kernels::Backend t = kernels::cpu_backend();
    t.name = "test-host";
    t.memory.copy_to_host = &copy_to_host;
    t.memory.copy_from_host = &copy_from_host;
    t.memory.alloc_pinned_host = &alloc_pinned_host;
    t.memory.free_pinned_host = &free_pinned_host;
    t.memory.copy_from_host_async = &copy_from_host;
    return t;
  }();
  return b;
}
}  // namespace

void install_test_host_device() { register_backend(Device::TestHost, &test_host_backend()); }

CrossDeviceCopies cross_device_copies() { return {to_host.load(), from_host.load(), to_host_bytes.load(), from_host_bytes.load()}; }

void reset_cross_device_copies() { to_host = from_host = to_host_bytes = from_host_bytes = 0; }

}  // namespace linspec::testing
