// The target's final hidden states (after the last norm) from its incremental and tree forms: what the draft heads
// read. LlamaModel::decode and verify_tree return logits only, so this file runs the same layer sequence from the
// model's public tensors and mixers and returns the hidden states; logits are then model.lm_head(hidden), the very
// GEMM decode() ends with. Requested upstream as LlamaModel::decode_hidden / verify_tree_hidden — when those land,
// these two functions become one-line forwards (tests/unit/test_speculative.cpp checks they match decode()).
#pragma once
#include <cstdint>
#include <vector>

#include "model/llama.h"

namespace linspec {

// Appends ids [B, T] to `state` like model.decode and returns the hidden states [B, T, D] (last_only: [B, 1, D]).
Tensor decode_hidden(const LlamaModel& model, DecodeState& state, const Tensor& ids, bool last_only = false);

// Like model.verify_tree (batch 1): hidden states [N, D] of the tree's nodes over the committed state, which is not
// advanced; state.pending_tree is filled so that model.advance() commits a path without recomputing it.
Tensor verify_tree_hidden(const LlamaModel& model, DecodeState& state, const std::vector<int32_t>& ids,
                          const std::vector<int32_t>& parent);

}  // namespace linspec
