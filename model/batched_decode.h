// Several independent sequences in one pass through the model: what continuous batching (the server's scheduler,
// serve/http/scheduler.h) and batched speculative verification (serve/speculative.h) need. Every sequence keeps its
// own batch-1 DecodeState, so sequences at different positions share a pass and can join or leave between passes;
// with linear attention each state is O(1).
//
// The tokens of all sequences are packed side by side (model/decoder_layer.h PackedPass): the projections, the MLP
// and the LM head run as one GEMM over all of them (the weights are read once per pass instead of once per
// sequence), RoPE turns each token to its own position, and the token mixer runs per sequence on its own state.
// Every row equals the sequence's own single-sequence result exactly: f32, bf16 and int8 inference weights go
// through linspec's own kernels (kernels/cpu/matmul_weight_rows.cpp, matmul_q8.cpp and their CUDA twins), which
// compute each output row with the same operations whatever the number of rows
// (tests/unit/test_serve_scheduler.cpp, tests/unit/mixer_forms.h). No LoRA adapters: serving checkpoints have them
// merged.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/llama.h"

namespace linspec {

// Appends ids[b] to *states[b] (each a batch-1 state of `model`) and returns the logits [B, V] (f32, on the model's
// device): row b equals LlamaModel::decode on that state alone. states.size() == ids.size() >= 1; the states must be
// distinct.
Tensor decode_batched(const LlamaModel& model, const std::vector<DecodeState*>& states,
                      const std::vector<int32_t>& ids);

// decode_batched before the LM head: appends ids[b] to *states[b] and returns the hidden states [B, D] (after the
// final norm), row b equal to LlamaModel::decode_hidden on that state alone.
Tensor decode_batched_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states,
                             const std::vector<int32_t>& ids);
// The hidden states [Σ P_b, D] (after the final norm) of every position of every prompt, appended to *states[b] in
// one pass; sequence b's rows after those of sequences 0 .. b−1, each equal to LlamaModel::decode_hidden alone.
Tensor prefill_batched_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states,
                              const std::vector<std::vector<int32_t>>& prompts);
// Prefill of several prompts in one pass: appends prompts[b] (non-empty) to *states[b] and returns the logits of
// each prompt's last position [B, V], row b equal to LlamaModel::decode(*states[b], prompts[b], last_only) alone.
Tensor prefill_batched(const LlamaModel& model, const std::vector<DecodeState*>& states,
                       const std::vector<std::vector<int32_t>>& prompts);

// verify_tree_hidden for several sequences in one pass: the tree (ids[b], parents[b]) over *states[b]'s committed
// tokens. Returns the hidden states [Σ N_b, D] (after the final norm), sequence b's rows after those of sequences
// 0 .. b−1, each equal to LlamaModel::verify_tree_hidden on that state alone. Every state's pending_tree is filled
// as verify_tree_hidden fills it, so LlamaModel::advance commits each sequence's accepted path without recomputing.
// No state advances. A sequence with an empty tree contributes no rows.
Tensor verify_trees_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states,
                           const std::vector<std::vector<int32_t>>& ids,
                           const std::vector<std::vector<int32_t>>& parents);

}  // namespace linspec
