// The seed's augmented linear attention (docs/method.md §1) in its three exact forms (§3):
//   ops::aug_attention   parallel, differentiable (training, prefill)
//   AugState + aug_step  recurrent decode, O(1) state per layer
//   aug_tree             speculative tree verification over a committed state, then aug_advance by the accepted path
//
// Per layer: q [B, Hq, T, d] (after RoPE), k / v [B, Hkv, T, d] (k after RoPE), Hq % Hkv == 0, query head h reads
// kv head h / (Hq / Hkv). Parameters: conv_w [Hq, C] (tap δ multiplies v_{t−δ}; only causal taps exist),
// lambda_local and lambda_global (scalar tensors, shape {} or {1}). With q̂ = q / sqrt(|q|² + eps) (same for k; the
// epsilon keeps zero vectors finite: 0 maps to 0 with gradient dq̂/sqrt(eps), never NaN) and g(t) = ⌊t/G⌋:
//   local_t  = Σ_{s ≤ t, g(s) = g(t)} relu(q̂_t·k̂_s)² v_s
//   global_t = q̂_tᵀ Σ_{s : g(s) < g(t)} k̂_s v_sᵀ
//   conv_t   = Σ_{δ=0}^{C−1} w_h[δ] v_{t−δ}            (v_{<0} = 0)
//   o_t      = λl·local_t + λg·global_t + conv_t        (disabled branches contribute nothing)
// All tensors of one call share a dtype, f32 or f64 (f64 for gradient checks).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace linspec {

struct AugConfig {
  int64_t group_size = 64;  // G
  int64_t conv_taps = 32;   // C (causal taps: current token + C−1 past)
  bool use_local = true, use_global = true, use_conv = true;
  double eps = 1e-6;  // L2-norm epsilon
  // The global term divided by the number of tokens it sums over (g(t)·G), so its scale does not grow with the
  // context: a linspec extension (docs/method.md §1); false is the seed's plain sum.
  bool global_mean = false;

  // Presets: "local", "global", "local+global", "local+conv", "aug" (all three). Unknown name -> InputError.
  static AugConfig preset(const std::string& name);
  static const std::vector<std::string>& preset_names();
  // The preset name matching the enabled branches ("aug", "local+conv", ...); "custom" when none matches.
  std::string preset_name() const;
  // `--set key=value` for group_size, conv_taps, eps, global_mean. Unknown key or bad value -> InputError.
  void set(const std::string& key, const std::string& value);
  // Throws InputError when group_size or conv_taps ≤ 0, eps < 0, or no branch is enabled.
  void validate() const;
};

namespace ops {
// The parallel (chunked) form; differentiable in q, k, v, conv_w and both lambdas. conv_w may be undefined when
// !use_conv; an undefined lambda counts as 1 (and receives no gradient). Work O(T·G·d + T·d²); kept for the backward:
// the inputs and the global term's per-kv-head group states [B, Hkv, ⌈T/G⌉, d, d] — no T×T or G×G matrix.
Tensor aug_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& conv_w,
                     const Tensor& lambda_local, const Tensor& lambda_global, const AugConfig& cfg);

// The three unscaled branches (local_t, global_t, conv_t), each [B, Hq, T, d], for diagnostics; not recorded.
// A disabled branch comes back as zeros.
struct AugBranchOutputs {
  Tensor local, global, conv;
};
AugBranchOutputs aug_attention_branches(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& conv_w,
                                        const AugConfig& cfg);
}  // namespace ops

// Decode state of one layer. S is kept per kv head (it depends only on k and v); tensors of disabled branches stay
// undefined. A plain copy shares the tensors; clone() makes an independent one.
struct AugState {
  AugConfig cfg;
  int64_t batch = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  DType dtype = DType::F32;
  int64_t pos = 0;  // tokens absorbed = absolute position of the next token
  Tensor S;         // [B, Hkv, d, d]  Σ k̂ vᵀ over complete groups (global)
  Tensor buf_k;     // [B, Hkv, G, d]  current group's k̂; rows [0, pos % G) valid (local or global)
  Tensor buf_v;     // [B, Hkv, G, d]  current group's v
  Tensor hist_v;    // [B, Hkv, C−1, d] ring of the last C−1 values of v, position p at slot p % (C−1) (conv)

  AugState() = default;
  // The state tensors live on `device` (the model's), next to the q / k / v the decode step is given.
  AugState(const AugConfig& cfg, int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
           DType dtype = DType::F32, Device device = Device::CPU);
  AugState clone() const;  // deep copy (e.g. to try a continuation without committing it)
  int64_t bytes() const;   // bytes held by the state tensors
};

// Bytes of one layer's decode state (independent of context length).
int64_t aug_state_bytes(const AugConfig& cfg, int64_t batch, int64_t kv_heads, int64_t head_dim,
                        DType dtype = DType::F32);

// One token at position state.pos: q [B, Hq, d] (or [B, Hq, 1, d]), k / v [B, Hkv, d] (or [B, Hkv, 1, d]).
// Returns o with q's shape and advances the state by one token. Not differentiable.
Tensor aug_step(AugState& state, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& conv_w,
                const Tensor& lambda_local, const Tensor& lambda_global);

// aug_step for several sequences at once, each on its own batch-1 state (one mixer's states: same config and
// shape): q [N, Hq, d], k / v [N, Hkv, d], row n being sequence n's token at states[n]->pos. Returns [N, Hq, d];
// row n equals aug_step on states[n] alone, bit for bit. One kernel call over all sequences' heads where a backend
// has one (CPU), else one per sequence. Advances every state by one token.
Tensor aug_step_many(const std::vector<AugState*>& states, const Tensor& q, const Tensor& k, const Tensor& v,
                     const Tensor& conv_w, const Tensor& lambda_local, const Tensor& lambda_global);

// Appends T tokens k / v [B, Hkv, T, d] to the state without producing outputs (after a parallel prefill).
void aug_absorb(AugState& state, const Tensor& k, const Tensor& v);

// Tree verification over the committed state (unchanged): q [B, Hq, N, d], k / v [B, Hkv, N, d] for N candidate
// nodes; parent[i] = −1 (child of the last committed token) or an earlier node j < i. Node i is at position
// state.pos + depth(i) (roots have depth 0) and its output [B, Hq, N, d] equals aug_step's output there for the
// prefix followed by its root-to-node path.
Tensor aug_tree(const AugState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                const std::vector<int32_t>& parent, const Tensor& conv_w, const Tensor& lambda_local,
                const Tensor& lambda_global);

// Node depths for a parent array (validates it: parent[i] ∈ [−1, i)).
std::vector<int32_t> tree_depths(const std::vector<int32_t>& parent);

// Commits an accepted path of the tree: `accepted` lists node indices root first, each the parent of the next
// (the first has parent −1). k / v are the tree's [B, Hkv, N, d]; only the accepted nodes are absorbed.
void aug_advance(AugState& state, const Tensor& k, const Tensor& v, const std::vector<int32_t>& parent,
                 const std::vector<int32_t>& accepted);

}  // namespace linspec
