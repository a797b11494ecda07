// Devices and raw memory. Each Device value is served by one compute backend (core/backend.h): CPU memory is
// 64-byte aligned host memory, CUDA memory comes from the caching allocator in kernels/cuda, and TestHost is a
// second host-memory device that only tests register (it proves that code keeps tensors on the model's device).
// Every allocation is counted so benchmarks and the eval job can report current and peak bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace linspec {

enum class Device : uint8_t { CPU, CUDA, TestHost };
constexpr int kDeviceCount = 3;
const char* device_name(Device d);  // "cpu", "cuda", "test-host"

// What a user asked for: "auto" (CUDA when this binary has it and a GPU is visible, else CPU), "cpu" or "cuda".
// `what` names the key or flag in error messages; `cuda` on a CPU-only build or without a GPU is an InputError
// saying which of the two, an unknown name is an InputError naming `what`.
Device resolve_device(const std::string& requested, const std::string& what);

// True when this binary was built with the CUDA backend and a GPU is visible.
bool cuda_available();
// Throws InputError with a clear message when CUDA is requested but not built or not present.
void require_cuda(const std::string& what);
// Under mpirun / srun, picks GPU local_rank mod visible GPUs for this process (no-op without CUDA); returns it.
int select_local_gpu();

void* device_alloc(Device d, size_t bytes);
void device_free(Device d, void* p, size_t bytes);
// Copies between any two devices (host<->device, device<->device, host<->host).
void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);
void device_memset_zero(Device d, void* p, size_t bytes);
// Waits for the device's queued work (a no-op for synchronous backends): timing and logging points only.
void device_synchronize(Device d);

struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
  int64_t allocations = 0;
};
MemoryStats memory_stats(Device d);
void reset_peak_memory(Device d);

}  // namespace linspec
