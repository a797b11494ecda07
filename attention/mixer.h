// The token mixer inside each decoder layer, behind one interface so the softmax attention of a pretrained
// model and the linear-attention presets that replace it plug into the same layer.
//
// The layer owns the q/k/v/o projections and RoPE; a mixer sees q [B, Hq, T, d] and k, v [B, Hkv, T, d]
// (q and k already rotated, Hq % Hkv == 0) and returns o [B, Hq, T, d], which the layer projects back.
// Every mixer has exact forms of the same function:
//   forward()  the parallel form over a whole sequence (training, scoring), differentiable;
//   step()     the incremental form: T >= 1 new tokens appended to a per-layer AttentionState (prefill with
//              T > 1, then decode with T = 1); outputs equal forward()'s rows at those positions;
//   tree()     speculative verification of a token tree over the state, then advance() by the accepted path.
// The linear-attention mixers are in attention/linear_mixers.h; the presets that build them in attention/registry.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace linspec {

struct AttentionShape {
  int64_t q_heads = 0, kv_heads = 0, head_dim = 0;
};

// How a preset creates a mixer's parameters (attention/registry.h).
struct MixerInit {
  DType dtype = DType::F32;
  bool requires_grad = true;  // mark learnable tensors as trainable leaves
  Device device = Device::CPU;  // where the mixer's tensors live (the model's device)
};

// One layer's decode state: a KV cache for softmax, a fixed-size recurrent state for linear attention.
class AttentionState {
 public:
  virtual ~AttentionState() = default;
  virtual int64_t position() const = 0;  // tokens absorbed so far = position of the next token
  virtual int64_t bytes() const = 0;     // memory held by the state
  virtual std::unique_ptr<AttentionState> clone() const = 0;  // deep copy (try a continuation, then drop it)
};

class AttentionMixer {
 public:
  virtual ~AttentionMixer() = default;
  virtual std::string kind() const = 0;  // "softmax", or a linear-attention preset name
  virtual const AttentionShape& shape() const = 0;

  // Parallel form; records on the tape when an input (or a mixer parameter) requires grad.
  virtual Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const = 0;

  // A fresh state for `batch` sequences on `device` (the model's); `max_len` bounds the tokens a KV cache must
  // hold (a recurrent state may ignore it).
  virtual std::unique_ptr<AttentionState> new_state(int64_t batch, int64_t max_len, DType dtype, Device device) const = 0;
  // Incremental form: q [B, Hq, T, d], k, v [B, Hkv, T, d] at positions state.position() .. +T-1.
  // Returns their outputs [B, Hq, T, d] and absorbs the tokens. Not differentiable.
  virtual Tensor step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const = 0;

  // The step of several sequences at once (continuous batching), each on its own batch-1 state: q [1, Hq, N, d],
  // k, v [1, Hkv, N, d] with token n belonging to states[n]. Returns [1, Hq, N, d], token n equal to step() on
  // states[n] alone. The default makes N step() calls; a mixer with a batched kernel overrides it.
  virtual Tensor step_many(const std::vector<AttentionState*>& states, const Tensor& q, const Tensor& k,
                           const Tensor& v) const;

  // Tree verification (speculative decoding): N candidate nodes over the committed state, which is left
  // unchanged. q [B, Hq, N, d], k, v [B, Hkv, N, d] (rotated at each node's own position); parent[i] is -1 (the
  // node follows the last committed token) or an earlier node j < i. Node i sits at position
  // state.position() + depth(i) and its output [B, Hq, N, d] equals step()'s output there for the committed
  // prefix followed by its root-to-node path. The default throws (a mixer without a tree form).
  virtual Tensor tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                      const std::vector<int32_t>& parent) const;
  // Commits an accepted path of that tree: node indices root first, each the parent of the next (may be empty);
  // k, v are the tree's [B, Hkv, N, d]. Rejected nodes leave no trace in the state.
  virtual void advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
                       const std::vector<int32_t>& accepted) const;

  // Learnable tensors the mixer adds to its layer, named relative to the layer's "self_attn." prefix.
  virtual std::vector<std::pair<std::string, Tensor>> parameters() const { return {}; }
  // Everything a checkpoint must store to rebuild the mixer: parameters() plus fixed tensors (a frozen λ,
  // performer's random features). Same naming as parameters().
  virtual std::vector<std::pair<std::string, Tensor>> persistent_tensors() const { return parameters(); }
};

// Validates a tree's parent array (parent[i] ∈ [-1, i)) and returns the node depths (roots: 0). InputError
// naming `where` otherwise.
std::vector<int32_t> tree_node_depths(const std::vector<int32_t>& parent, const std::string& where = "tree");
// InputError naming `where` unless `accepted` is a root-first chain of `parent` (each node the parent of the next).
void check_accepted_path(const std::vector<int32_t>& parent, const std::vector<int32_t>& accepted,
                         const std::string& where = "accepted path");

// ---- softmax attention (the pretrained model's own) ----

// Preallocated per-layer cache: k, v [B, Hkv, max_len, d]; rows [0, length) are filled.
class KVCache : public AttentionState {
 public:
  KVCache(int64_t batch, int64_t kv_heads, int64_t head_dim, int64_t max_len, DType dtype,
          Device device = Device::CPU);
  int64_t position() const override { return length_; }
  int64_t bytes() const override { return static_cast<int64_t>(k_.nbytes() + v_.nbytes()); }
  std::unique_ptr<AttentionState> clone() const override;

  int64_t capacity() const { return k_.size(2); }
  // Appends k, v [B, Hkv, T, d]; InputError when the cache would overflow.
  void append(const Tensor& k, const Tensor& v);
  // The filled prefix [B, Hkv, length, d] as contiguous tensors (what the attention kernel reads).
  Tensor keys() const;
  Tensor values() const;
  // Forgets every token from `length` on (rejected speculative tokens).
  void truncate(int64_t length);

 private:
  Tensor k_, v_;
  int64_t length_ = 0;
};

class SoftmaxAttention : public AttentionMixer {
 public:
  explicit SoftmaxAttention(const AttentionShape& shape) : shape_(shape) {}
  std::string kind() const override { return "softmax"; }
  const AttentionShape& shape() const override { return shape_; }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const override;
  std::unique_ptr<AttentionState> new_state(int64_t batch, int64_t max_len, DType dtype, Device device) const override;
  Tensor step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const override;
  // KV cache + tree mask: node i attends to every cached key and to its own ancestors (attention/softmax/softmax_tree.cpp).
  Tensor tree(const AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v,
              const std::vector<int32_t>& parent) const override;
  void advance(AttentionState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
               const std::vector<int32_t>& accepted) const override;

 private:
  AttentionShape shape_;
};

}  // namespace linspec
