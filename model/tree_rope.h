// RoPE at arbitrary positions, for tree verification where sibling nodes share a position and a node's position
// is the committed length plus its depth, not its index in the batch.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace linspec {

// x [B, H, N, d]; row n is rotated to positions[n] exactly as ops::rope rotates a token at that position.
// Not differentiable (inference only).
Tensor rope_at_positions(const Tensor& x, double theta, const std::vector<int64_t>& positions,
                         const std::vector<float>& inv_freq);

}  // namespace linspec
