// CUDA twin of kernels/adamw.h: the fused multi-tensor AdamW update (every pointer in the tensors is device memory;
// the list itself is on the host). One launch for all tensors.
#pragma once
#include <vector>

#include "kernels/adamw.h"

namespace linspec::kernels::cuda {

using cpu::AdamWCoeffs;
using cpu::AdamWTensor;

void adamw_update(const std::vector<AdamWTensor>& tensors);

}  // namespace linspec::kernels::cuda
