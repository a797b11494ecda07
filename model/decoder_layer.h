// The one decoder layer of every LLaMA-family forward in linspec: LlamaModel's parallel, incremental and tree forms
// (train scoring, eval, generate, verify, speculative serving) and the trainer's Student (LoRA, attention-transfer
// tap) all run this function, so the forms cannot drift apart:
//   x1 = x + o_proj(mixer(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   with n1 = rmsnorm(x)
//   y  = x1 + down_proj(silu(gate_proj(n2)) · up_proj(n2))                   with n2 = rmsnorm(x1)
// Each projection adds its LoRA adapter's update when the layer has one (model/lora.h). docs/architecture.md
// follows one training step through it.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "attention/mixer.h"
#include "model/config.h"
#include "model/lora.h"

namespace linspec {

// A layer's tensors (biases undefined when the config has none), its token mixer and its adapters.
struct DecoderLayerWeights {
  Tensor input_norm, post_attention_norm;
  Tensor q_proj, k_proj, v_proj, o_proj;
  Tensor q_bias, k_bias, v_bias, o_bias;
  Tensor gate_proj, up_proj, down_proj;
  // Inference-only fusions (LlamaModel::set_inference_weights, bf16 / q8): [q; k; v] and [gate; up] stacked by rows,
  // so a decoded token converts its input once and runs one GEMM where it ran three / two. Undefined otherwise.
  Tensor qkv_proj, gate_up_proj;
  const AttentionMixer* mixer = nullptr;
  const LoraAdapter* lora[kLoraTargetCount] = {};  // by LoraTarget; null where no adapter sits
};

// Sees each layer's mixer inputs and output during the forward; returns a scalar loss term for that layer, or an
// undefined tensor (attention transfer, trainer/objectives.h).
using MixerTap = std::function<Tensor(int64_t layer, const AttentionMixer& mixer, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& o)>;

// Several sequences' new tokens in one pass: tree verification (one sequence or many) and continuous batching
// (model/batched_decode.h). x is [1, N, D] with each sequence's tokens side by side. The projections, norms and the
// MLP run once over all N tokens (one GEMM per weight, which is what makes a batch pay on a memory-bound decode),
// RoPE turns every token to its own position, and the mixer runs each sequence on that sequence's own state: a pass
// of steps (new tokens appended: one per sequence goes to AttentionMixer::step_many, several — a prefill — to each
// sequence's step) or a pass of trees (each `parent` set).
struct PackedSequence {
  AttentionState* state = nullptr;                       // this layer's state of the sequence (set per layer)
  int64_t begin = 0, end = 0;                            // its tokens in x
  const std::vector<int32_t>* parent = nullptr;          // set: a tree of end − begin nodes; else new tokens (steps)
  std::vector<std::pair<Tensor, Tensor>>* kv = nullptr;  // tree: each layer appends its k / v [1, Hkv, n, d] here
};
struct PackedPass {
  std::vector<int64_t> positions;         // every token's RoPE position
  std::vector<PackedSequence> sequences;  // in x's order
  ops::RopeRows rope;                     // cos / sin at `positions` (ops::rope_rows_at_positions), once per pass
};

// Which form of the layer runs, and what rides along.
struct LayerPass {
  int64_t pos0 = 0;                  // absolute position of x's first token
  AttentionState* state = nullptr;   // null: parallel form; set: incremental form over this state
  const PackedPass* packed = nullptr; // set: packed form (state and pos0 unused)
  const LoraContext* lora = nullptr; // dropout context of the adapters (null: no adapter is applied)
  const MixerTap* tap = nullptr;     // called once on (q, k, v, o)
};

struct LayerOutput {
  Tensor y;     // [B, T, D]
  Tensor term;  // what the tap returned (undefined without one)
};

// One layer on x [B, T, D]. `inv_freq` [head_dim / 2] on x's device holds the RoPE frequencies; `index` is the
// layer's number (for the tap). Ops are profiled under the kinds `linspec bench train` reports.
LayerOutput decoder_layer(const DecoderLayerWeights& w, const ModelConfig& config, ops::MatmulPrecision precision,
                          const Tensor& inv_freq, int64_t index, const Tensor& x, const LayerPass& pass);

}  // namespace linspec
