// LoRA (Hu et al. 2021) on the named projections of a LLaMA-family model: for a frozen base weight W [out, in],
//   y = x Wᵀ (+ b) + (α / r) · (drop(x) Aᵀ) Bᵀ,   A [r, in] ~ Kaiming-uniform(a = √5) = U(±1/√in),  B [out, r] = 0,
// so a fresh adapter leaves the model's function unchanged. A and B are the trainable leaves; W is never written.
// On export the update is merged: W' = W + (α / r) · B A, after which the adapter can be dropped.
//
// Names: the adapter on "model.layers.3.self_attn.q_proj.weight" has the parameters
// "model.layers.3.self_attn.q_proj.lora_A" and "…lora_B" (checkpoints drop the leading "model.", as for every
// tensor). A checkpoint holding adapters records {"rank", "alpha", "targets"} as JSON in the root attribute "lora".
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "model/config.h"

namespace linspec {

// The projections an adapter can sit on, in the order the layer runs them.
enum class LoraTarget { Q, K, V, O, Gate, Up, Down };
constexpr int kLoraTargetCount = 7;

// "q", "k", "v", "o", "gate", "up", "down"
const char* lora_target_name(LoraTarget t);
// InputError naming the value and the choices for an unknown name.
LoraTarget lora_target_from_name(const std::string& name);
// "self_attn.q_proj", ..., "mlp.down_proj"
const char* lora_target_module(LoraTarget t);
// "model.layers.<layer>.<module>" (HF name of the projection, without ".weight")
std::string lora_projection_name(int64_t layer, LoraTarget t);

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0.0;  // on the adapter's input only, during training
  std::vector<std::string> targets = {"q", "k", "v", "o"};
  double scale() const { return rank > 0 ? alpha / static_cast<double>(rank) : 0.0; }
};

// Per-forward context: dropout is applied only when `training`, with masks drawn from (key, adapter, element) so a
// recomputed forward (activation checkpointing) sees the same masks as the first one.
struct LoraContext {
  bool training = false;
  uint64_t dropout_key = 0;
};

class LoraAdapter {
 public:
  // A: Kaiming-uniform from Philox(seed) (element i depends only on (seed, i)); B: zeros. Both require grad.
  LoraAdapter(int64_t in, int64_t out, const LoraConfig& config, uint64_t seed, uint64_t stream, DType dtype,
              Device device = Device::CPU);
  // From given tensors A [r, in] and B [out, r] (kept as handles: tests pass their own leaves).
  LoraAdapter(Tensor a, Tensor b, double scale, double dropout, uint64_t stream);

  // y + (α/r)·(drop(x) Aᵀ) Bᵀ for x [..., in] and the base output y [..., out]; differentiable in x, A, B.
  Tensor apply(const Tensor& x, const Tensor& y, const LoraContext& ctx,
               ops::MatmulPrecision precision = ops::MatmulPrecision::Auto) const;
  // (α/r) · B A  [out, in], not recorded.
  Tensor delta() const;

  const Tensor& A() const { return a_; }
  const Tensor& B() const { return b_; }
  double scale() const { return scale_; }

 private:
  Tensor a_, b_;
  double scale_, dropout_;
  uint64_t stream_;  // distinguishes the dropout masks of different adapters
};

// All adapters of one model.
class LoraSet {
 public:
  // One adapter per layer and configured target. `dtype` and `device` are the model's (f32, or f64 in tests).
  LoraSet(const ModelConfig& model, const LoraConfig& config, uint64_t seed, DType dtype = DType::F32,
          Device device = Device::CPU);

  const LoraConfig& config() const { return config_; }
  bool empty() const { return adapters_.empty(); }
  // The adapter on (layer, target), or nullptr.
  const LoraAdapter* find(int64_t layer, LoraTarget t) const;
  // ("model.layers.i.<module>.lora_A", A), (…lora_B, B) per adapter, layer by layer.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;

  // Overwrites A and B from tensors named as named_parameters() (with or without the leading "model."); InputError
  // naming `where` and the tensor when one is missing or has the wrong shape.
  void load(const std::map<std::string, Tensor>& tensors, const std::string& where);

  // The "lora" root attribute of a checkpoint.
  std::string attrs_json() const;

 private:
  LoraConfig config_;
  std::map<std::pair<int64_t, int>, std::unique_ptr<LoraAdapter>> adapters_;
};

// True for a LoRA parameter name ("….lora_A" / "….lora_B").
bool is_lora_tensor_name(const std::string& name);

// Merges every adapter found in `tensors` (checkpoint names, e.g. "layers.0.self_attn.q_proj.lora_A") into its base
// weight, W += (α/r)·B A, and removes the adapter tensors. `lora_attrs` is the checkpoint's "lora" attribute; `where`
// names the file in errors (missing base weight, A without B, shape mismatch, bad attribute). No-op when the map
// holds no adapter. Returns the number of adapters merged.
int merge_lora_tensors(std::map<std::string, Tensor>& tensors, const std::string& lora_attrs, const std::string& where);

}  // namespace linspec
