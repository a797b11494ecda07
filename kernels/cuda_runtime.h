// The CUDA runtime surface the rest of linspec sees: is CUDA compiled in, how many GPUs are visible, which one this
// process uses. Without the CUDA backend these are stubs (kernels/cuda_stub.cpp) so CPU-only builds link.
#pragma once

namespace linspec::kernels::cuda {

bool built_with_cuda();
int device_count();  // 0 when not built with CUDA or no GPU is visible
// Makes GPU `index` current for this process (one process per GPU under mpirun).
void set_device(int index);
int current_device();

}  // namespace linspec::kernels::cuda
