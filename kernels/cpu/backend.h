// The CPU backend's table (host memory, oneDNN GEMMs, OpenMP kernels). Code outside kernels/ reaches it through
// core/backend.h (backend(Device::CPU)); tests and benchmarks of raw kernels may use it directly.
#pragma once
#include "kernels/backend.h"

namespace linspec::kernels {
const Backend& cpu_backend();
// Its per-dtype kernels, for raw-kernel tests and benchmarks.
template <typename T>
const FloatKernels<T>& cpu_kernels() {
  return cpu_backend().of<T>();
}
}  // namespace linspec::kernels
