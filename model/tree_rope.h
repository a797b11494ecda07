// RoPE at arbitrary positions, for tree verification where sibling nodes share a position and a node's position
// is the committed length plus its depth, not its index in the batch.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace linspec {

// x [B, H, N, d]; row n is rotated to positions[n] exactly as ops::rope(x, pos, inv_freq) rotates a token at that
// position (inv_freq [d / 2] on x's device). Not differentiable (inference only).
Tensor rope_at_positions(const Tensor& x, const std::vector<int64_t>& positions, const Tensor& inv_freq);

}  // namespace linspec
