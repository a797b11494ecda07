// The CUDA backend's table. Without the CUDA build (kernels/cuda_stub.cpp) cuda_backend() is null; code outside
// kernels/ reaches it through core/backend.h (backend(Device::CUDA)), which also checks that a GPU is visible.
#pragma once
#include "kernels/backend.h"

namespace linspec::kernels {
const Backend* cuda_backend();
}  // namespace linspec::kernels
