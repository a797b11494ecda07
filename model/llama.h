// A LLaMA-family decoder (LLaMA, Mistral without sliding window, Qwen2) built from the differentiable ops:
//   embed → L × [x += o_proj(mixer(rope(q), rope(k), v)) on rmsnorm(x);  x += down(silu(gate)·up) on rmsnorm(x)]
//   → rmsnorm → lm_head (tied to the embedding when the config says so).
// Parameters are named as in HF checkpoints ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight").
// The token mixer of each layer is pluggable (attention/mixer.h); a fresh model uses softmax attention.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "attention/mixer.h"
#include "attention/spec.h"
#include "model/config.h"
#include "model/decoder_layer.h"
#include "model/parameter_store.h"

namespace linspec {

struct LlamaOptions {
  DType dtype = DType::F32;  // parameter and activation dtype (F64 for gradient checks)
  ops::MatmulPrecision precision = ops::MatmulPrecision::Auto;  // BF16: bf16 GEMM inputs, f32 accumulation
  bool recompute = false;    // per-layer activation checkpointing in training forwards
  bool requires_grad = true; // mark the parameters as trainable leaves
  Device device = Device::CPU;  // where parameters, activations and gradients live (ids may come from the host)
};

// One decoder layer: its tensors (handles shared with the ParameterStore) and the token mixer it owns
// (`mixer` points at `owned_mixer`). The layer function is model/decoder_layer.h.
struct LlamaLayer : DecoderLayerWeights {
  std::unique_ptr<AttentionMixer> owned_mixer;
};

// Per-sequence-batch decoding state: one AttentionState per layer.
struct DecodeState {
  int64_t batch = 0;
  std::vector<std::unique_ptr<AttentionState>> layers;
  int64_t position() const { return layers.empty() ? 0 : layers.front()->position(); }
  int64_t bytes() const;
  DecodeState clone() const;  // deep copy (try a continuation, then drop it)

  // The last verify_tree's per-layer k / v, so advance() commits a path without recomputing it.
  struct PendingTree {
    int64_t position = -1;
    std::vector<int32_t> ids, parent;
    std::vector<std::pair<Tensor, Tensor>> kv;  // per layer: k, v [1, Hkv, N, d]
  } pending_tree;
};

class LlamaModel {
 public:
  // Weights from a tensor map keyed by HF names (linspec checkpoint names without "model." work too); every expected
  // tensor must be present with its exact shape, else InputError naming `where` and the tensor. Tensors are
  // converted to options.dtype. lm_head.weight is not read when the embeddings are tied.
  static LlamaModel from_tensors(const ModelConfig& config, const std::map<std::string, Tensor>& tensors,
                                 const LlamaOptions& options = {}, const std::string& where = "checkpoint");
  // HF-style random init: linear and embedding weights N(0, 0.02²) from Philox(seed), biases 0, norms 1.
  static LlamaModel random(const ModelConfig& config, uint64_t seed, const LlamaOptions& options = {});
  // The names and shapes a checkpoint for `config` must provide (lm_head only when untied).
  static std::vector<std::pair<std::string, Shape>> expected_tensors(const ModelConfig& config);

  LlamaModel(LlamaModel&&) = default;
  LlamaModel& operator=(LlamaModel&&) = default;

  const ModelConfig& config() const { return config_; }
  const LlamaOptions& options() const { return options_; }
  void set_options(const LlamaOptions& o);  // precision / recompute (dtype and requires_grad are fixed)
  // Inference weights: the layers' projections and the LM head in `format` (F32: as stored; BF16: half the bytes a
  // decoded token reads; Q8: int8 blocks, ~0.28× (kernels/q8_format.h); the embedding table, norms and the mixers'
  // own parameters stay f32), multiplied by batch-invariant kernels in every format (precision F32BatchInvariant).
  // Only for a model that does not train (requires_grad false); the checkpoint tensors and named_parameters() keep
  // the f32 values.
  // `lm_head` false leaves the LM head f32: for a model whose head never runs (the feature draft's layer, which
  // projects with its target's head), so no 28 MB copy of it is made.
  void set_inference_weights(DType format, bool lm_head = true);
  DType inference_weights() const { return inference_weights_; }
  const ParameterStore& parameters() const { return params_; }
  // Every trainable tensor: the store plus the mixers' own parameters ("model.layers.i.self_attn.<name>").
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const LlamaLayer& layer(int64_t i) const { return layers_.at(i); }

  // Replaces layer i's token mixer (its shape must match the layer's heads).
  void set_attention(int64_t layer, std::unique_ptr<AttentionMixer> mixer);

  // ---- linear attention (model/llama_attention.cpp) ----
  // Gives every layer not in spec.keep_softmax_layers a fresh mixer of spec's preset (docs/method.md §4 inits; the
  // kept layers get softmax) and records the resolved spec in config().attention. InputError on a bad spec.
  void set_attention_spec(const AttentionSpec& spec);
  AttentionSpec attention_spec() const;
  // Every tensor a checkpoint needs, by linspec name: the store ("layers.0.self_attn.q_proj.weight", ...) plus
  // each mixer's persistent tensors ("layers.0.self_attn.la.conv_w", ...).
  std::map<std::string, Tensor> checkpoint_tensors() const;

  // ---- tree verification for speculative decoding (model/llama_tree.cpp); batch 1, no gradients ----
  // ids i32 [N] (or [1, N]) of N candidate nodes over the committed state; parent[i] = −1 (follows the last
  // committed token) or an earlier node. Returns logits [N, V]: row i equals decode()'s logits at position
  // state.position() + depth(i) for the committed prefix followed by node i's root-to-node path. The state is
  // not advanced (the per-layer k / v are kept in state.pending_tree for advance()).
  Tensor verify_tree(DecodeState& state, const Tensor& ids, const std::vector<int32_t>& parent) const;
  // Commits the accepted root-first path of that tree (node indices); rejected nodes leave no trace. Reuses the
  // pending tree's k / v when it matches (same position, ids and parents), else recomputes them.
  void advance(DecodeState& state, const Tensor& ids, const std::vector<int32_t>& parent,
               const std::vector<int32_t>& accepted) const;

  // ---- parallel (training / scoring) forward: records on the tape when parameters require grad ----
  // ids i32 [B, T] -> final hidden state (after the last norm) [B, T, D].
  Tensor forward_hidden(const Tensor& ids) const;
  // hidden [..., D] -> logits [..., V].
  Tensor lm_head(const Tensor& hidden) const;
  // The same projection with the weight as a constant: differentiable in `hidden` only. For callers outside the
  // trainer's Student (the draft heads' shared projection): the model's own weight tensor is not what trains (the
  // Student trains handles of it), so a gradient for it would be a wasted V×D GEMM and buffer per step.
  Tensor lm_head_frozen(const Tensor& hidden) const;
  Tensor forward(const Tensor& ids) const;
  // The GEMM precision of the parallel forward: the model's, except that f32 inference weights (precision
  // F32BatchInvariant) run the library GEMM here — only decoding and verification must agree bit for bit, and at
  // a thousand rows the library GEMM is ~1.8× faster than the batch-invariant kernel.
  ops::MatmulPrecision parallel_precision() const;
  // RoPE frequencies [head_dim / 2] (model dtype) on the model's device, as every layer rotates with them.
  const Tensor& rope_inv_freq() const { return inv_freq_; }

  // ---- incremental decoding (no gradients) ----
  DecodeState new_decode_state(int64_t batch, int64_t max_len) const;
  // Appends ids [B, T] at state.position() (a prompt prefill, or T = 1 per decode step) and returns
  // logits [B, T, V] (or only the last position's [B, 1, V] when last_only).
  Tensor decode(DecodeState& state, const Tensor& ids, bool last_only = false) const;
  // The same, returning the final hidden states [B, T, D] (after the last norm) instead of logits: what draft heads
  // read. decode() is lm_head(decode_hidden()).
  Tensor decode_hidden(DecodeState& state, const Tensor& ids, bool last_only = false) const;
  // verify_tree's hidden states [N, D] (verify_tree is lm_head of them); fills state.pending_tree alike.
  Tensor verify_tree_hidden(DecodeState& state, const Tensor& ids, const std::vector<int32_t>& parent) const;

 private:
  LlamaModel(const ModelConfig& config, const LlamaOptions& options);
  void register_parameters(const std::map<std::string, Tensor>* source, uint64_t seed, const std::string& where);
  Tensor embed(const Tensor& ids) const;
  // Builds the mixers config_.attention asks for; their tensors come from `source` (a checkpoint) or fresh inits.
  void build_attention_from_config(const std::map<std::string, Tensor>* source, const std::string& where);
  // Every layer in the incremental form over `state` (before the final norm).
  Tensor decode_layers(const Tensor& x, DecodeState& state, int64_t pos0) const;

  ModelConfig config_;
  LlamaOptions options_;
  ParameterStore params_;
  Tensor embed_tokens_, final_norm_, lm_head_;  // lm_head_ aliases embed_tokens_ when tied
  std::vector<LlamaLayer> layers_;
  Tensor inv_freq_;
  DType inference_weights_ = DType::F32;
};

}  // namespace linspec
