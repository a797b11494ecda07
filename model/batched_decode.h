// One incremental decode step over several independent sequences at once: what continuous batching needs (the
// server's scheduler, serve/http/scheduler.h). Every sequence keeps its own batch-1 DecodeState, so sequences at
// different positions share a step and can join or leave between steps; with linear attention each state is O(1).
//
// The projections, the MLP and the LM head run as one GEMM over the B new tokens (the weights are read once per
// step instead of once per sequence, which is what makes batching pay on a memory-bound decode); RoPE and the
// token mixer run per sequence on its own state and position. The layer math mirrors model/decoder_layer.cpp's
// incremental form (without LoRA adapters: serving checkpoints have them merged, and load_model merges a
// snapshot's); tests/unit/test_serve_batched_decode.cpp checks that every row equals LlamaModel::decode exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/llama.h"

namespace linspec {

// Appends ids[b] to *states[b] (each a batch-1 state of `model`) and returns the logits [B, V] (f32, on the model's
// device). states.size() == ids.size() >= 1; the states must be distinct.
Tensor decode_batched(const LlamaModel& model, const std::vector<DecodeState*>& states,
                      const std::vector<int32_t>& ids);

}  // namespace linspec
