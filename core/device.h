// Devices and raw memory. CPU memory is 64-byte aligned; CUDA memory comes from kernels/cuda.
// Every allocation is counted so benchmarks and the eval job can report current and peak bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace linspec {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);
Device device_from_name(const std::string& name);  // "cpu" | "cuda"; InputError otherwise

// True when this binary was built with the CUDA backend and a GPU is visible.
bool cuda_available();
// Throws InputError with a clear message when CUDA is requested but not built or not present.
void require_cuda(const char* what);

void* device_alloc(Device d, size_t bytes);
void device_free(Device d, void* p, size_t bytes);
// Copies between any two devices (host<->device, device<->device, host<->host).
void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);
void device_memset_zero(Device d, void* p, size_t bytes);

struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
  int64_t allocations = 0;
};
MemoryStats memory_stats(Device d);
void reset_peak_memory(Device d);

}  // namespace linspec
