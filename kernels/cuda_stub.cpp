// CPU-only builds: no CUDA backend table and no GPUs.
#ifndef LINSPEC_WITH_CUDA
#include <stdexcept>

#include "kernels/cuda/backend.h"
#include "kernels/cuda_runtime.h"

namespace linspec::kernels {
const Backend* cuda_backend() { return nullptr; }
namespace cuda {
bool built_with_cuda() { return false; }
int device_count() { return 0; }
void set_device(int) { throw std::runtime_error("linspec was built without CUDA"); }
int current_device() { return -1; }
}  // namespace cuda
}  // namespace linspec::kernels
#endif
