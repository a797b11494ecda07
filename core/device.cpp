#include "core/device.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "kernels/cuda_runtime.h"

namespace linspec {
namespace {
struct Counters {
  std::atomic<int64_t> current{0}, peak{0}, allocations{0};
};
Counters& counters(Device d) {
  static Counters c[kDeviceCount];
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

// The node-local rank under OpenMPI or Slurm, or -1 when neither launcher says.
int launcher_local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  return -1;
}
}  // namespace

const char* device_name(Device d) {
  switch (d) {
    case Device::CPU: return "cpu";
    case Device::CUDA: return "cuda";
    case Device::TestHost: return "test-host";
  }
  return "?";
}

// Asked once: cudaGetDeviceCount is not free, and the answer does not change while a process runs.
static int visible_gpus() {
  static const int n = kernels::cuda::device_count();
  return n;
}

bool cuda_available() { return visible_gpus() > 0; }

void require_cuda(const std::string& what) {
  if (!kernels::cuda::built_with_cuda())
    throw_input_error(what, ": cuda was requested but this linspec was built without CUDA (configure with "
                            "-DLINSPEC_CUDA=ON on a machine with nvcc)");
  if (visible_gpus() <= 0)
    throw_input_error(what, ": cuda was requested but no CUDA device is visible on this machine");
}

Device resolve_device(const std::string& requested, const std::string& what) {
  if (requested == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  if (requested == "cpu") return Device::CPU;
  if (requested == "cuda" || requested == "gpu") {
    require_cuda(what);
    return Device::CUDA;
  }
  throw_input_error(what, ": unknown device '", requested, "' (expected auto, cpu or cuda)");
}

int select_local_gpu() {
  const int gpus = visible_gpus();
  if (gpus <= 0) return -1;
  const int local = launcher_local_rank();
  const int index = (local < 0 ? 0 : local) % gpus;
  kernels::cuda::set_device(index);
  return index;
}

void* device_alloc(Device d, size_t bytes) {
  void* p = backend(d).memory.alloc(bytes);
  count_alloc(d, bytes);
  return p;
}

void device_free(Device d, void* p, size_t bytes) {
  if (!p) return;
  backend(d).memory.free(p);
  counters(d).current.fetch_sub(static_cast<int64_t>(bytes));
}

void device_copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) {
  if (bytes == 0) return;
  if (dd == sd) return backend(dd).memory.copy_within(dst, src, bytes);
  if (sd == Device::CPU) return backend(dd).memory.copy_from_host(dst, src, bytes);
  if (dd == Device::CPU) return backend(sd).memory.copy_to_host(dst, src, bytes);
  // Between two non-host devices: stage through host memory.
  std::vector<char> staging(bytes);
  backend(sd).memory.copy_to_host(staging.data(), src, bytes);
  backend(dd).memory.copy_from_host(dst, staging.data(), bytes);
}

void device_memset_zero(Device d, void* p, size_t bytes) {
  if (bytes) backend(d).memory.memset_zero(p, bytes);
}

void device_synchronize(Device d) { backend(d).memory.synchronize(); }

MemoryStats memory_stats(Device d) {
  auto& c = counters(d);
  return {c.current.load(), c.peak.load(), c.allocations.load()};
}

void reset_peak_memory(Device d) {
  auto& c = counters(d);
  c.peak.store(c.current.load());
}

}  // namespace linspec
