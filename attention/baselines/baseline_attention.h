// Baseline linear attentions (docs/method.md §2) in the three exact forms of §3:
//   1. baseline_attention():           parallel (training) form, chunked, differentiable in q, k, v and every learnable
//                                    parameter of the preset;
//   2. baseline_attention_decode():    recurrent form, one token in and out, O(1) state (no KV cache);
//   3. baseline_attention_tree():      tree verification over the committed prefix, then
//      baseline_attention_advance():   fold the accepted root-to-node path into the state (rejected nodes leave no
//      trace).
// All three compute the same function: the decode / tree outputs equal the parallel output at the same position to
// rounding. Shapes: q [B, Hq, T, d] and k, v [B, Hkv, T, d] (q and k after RoPE), Hq % Hkv == 0 (GQA); f32 or f64.
//
// Presets (φ is applied per head; the kernel form is o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + eps),
// S_t = Σ_{s≤t} φ(k_s)v_sᵀ, z_t = Σ_{s≤t} φ(k_s)):
//   elu          φ = elu + 1
//   relu         φ = relu
//   performer    φ(x) = exp(ωᵀx' − |x'|²/2)/√m, x' = d^{-1/4}x, m features, ω [m, d] Gaussian-orthogonal blocks with
//                chi-distributed row norms drawn from `seed` (so a checkpoint stores the seed, not ω); on the query
//                side the per-token max of ωᵀx' is subtracted (it cancels in the ratio up to eps)
//   cosformer    φ(x_t) = [relu(x_t) cos θ_t, relu(x_t) sin θ_t], θ_t = π t / (2M): the cos(π/2·(t−s)/M) re-weighting
//                expanded into cos/sin terms; M = max_len (beyond a distance of M the re-weighting turns negative, so
//                keep contexts within M)
//   transnormer  φ = elu + 1, no denominator, RMSNorm over d on the output (optionally with a learnable weight)
//   hedgehog     φ(x) = [softmax(xW_h + b_h), softmax(−(xW_h + b_h))], W [Hq, d, d] init identity, b [Hq, d] init 0
//   yoso         o_t = Σ_{s≤t in t's group of G} (1 − arccos(q̂_t·k̂_s)/π)^τ v_s, q̂ = q/|q| (no denominator, like the
//                seed's local branch)
//   window       softmax over keys t−W < s ≤ t (scale 1/√d) plus the hedgehog term over keys s ≤ t−W weighted by
//                γ_h = σ(mix_logit_h), one shared normaliser:
//                o_t = (Σ_win e^{a_ts} v_s + γ φ(q_t)ᵀ Σ_{s≤t−W} φ(k_s)v_sᵀ) / (Σ_win e^{a_ts} + γ φ(q_t)ᵀ Σ_{s≤t−W}
//                φ(k_s))
// The `+conv` augmentation is applied by the attention layer on top of any of these.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace linspec {

enum class BaselinePreset { Elu, Relu, Performer, Cosformer, Transnormer, Hedgehog, Yoso, Window };

// All presets in a fixed order (for tables and tests).
const std::vector<BaselinePreset>& all_baseline_presets();
const char* baseline_preset_name(BaselinePreset p);
bool is_baseline_preset(const std::string& name);
// Throws InputError naming `where` (e.g. the config file and key) for an unknown name.
BaselinePreset parse_baseline_preset(const std::string& name, const std::string& where = "attention preset");

struct BaselineAttentionConfig {
  BaselinePreset preset = BaselinePreset::Elu;
  int64_t chunk = 64;        // chunk_size: parallel block size (kernel presets)
  int64_t group = 64;        // group_size: yoso's group G
  int64_t features = 64;     // performer: m
  uint64_t seed = 0;         // performer: ω is drawn from this seed
  int64_t max_len = 4096;    // cosformer: M
  int64_t window = 64;       // window: softmax window W
  double tau = 8;            // yoso: exponent τ
  double eps = 1e-6;         // kernel-form denominator (window needs none: its normaliser is ≥ 1)
  double norm_eps = 1e-6;    // transnormer RMSNorm
  bool norm_weight = false;  // transnormer: learnable RMSNorm weight
  double mix_init = -2.197;  // window: initial mixing logit (σ ≈ 0.1)

  // InputError (naming `where`) on a non-positive size or a negative eps.
  void validate(const std::string& where = "attention options") const;
};

// Applies one option `key=value` (chunk_size, group_size, features, seed, max_len, window, tau, eps, norm_eps,
// norm_weight, mix_init). InputError naming `where` and the key for an unknown key or a malformed value.
void set_baseline_attention_option(BaselineAttentionConfig& cfg, const std::string& key, const std::string& value,
                                 const std::string& where = "attention options");

// Per-layer tensors of a preset; undefined when the preset has none.
struct BaselineAttentionParams {
  Tensor omega;        // performer [m, d]: fixed (not trained), regenerated from cfg.seed
  Tensor feature_w;    // hedgehog, window [Hq, d, d]   learnable
  Tensor feature_b;    // hedgehog, window [Hq, d]      learnable
  Tensor mix_logit;    // window [Hq]                   learnable
  Tensor norm_weight;  // transnormer with norm_weight [Hq, d]   learnable

  // The learnable tensors with their names ("feature_w", ...), for optimizers and checkpoints.
  std::vector<std::pair<std::string, Tensor>> learnable() const;
};

// Fresh parameters with the preset's initialisation; learnable ones are marked requires_grad.
BaselineAttentionParams init_baseline_attention_params(const BaselineAttentionConfig& cfg, int64_t q_heads, int64_t head_dim,
                                                   DType dtype = DType::F32);
// Performer's ω [m, d]: ⌈m/d⌉ blocks of d orthonormal rows (Gram–Schmidt of a Gaussian matrix), each row rescaled by
// an independent chi(d)-distributed norm; all draws from Philox(seed). Deterministic in (m, d, seed).
Tensor performer_omega(int64_t m, int64_t d, uint64_t seed, DType dtype = DType::F32);

// Feature count F of the state S [F, d] (0 for yoso).
int64_t baseline_feature_count(const BaselineAttentionConfig& cfg, int64_t head_dim);

// ---- 1. parallel form ----
Tensor baseline_attention(const BaselineAttentionConfig& cfg, const BaselineAttentionParams& params, const Tensor& q,
                        const Tensor& k, const Tensor& v);

// ---- 2./3. state-based forms (inference: no gradients) ----
// The O(1) decode state of one layer. Kernel presets keep S [B, Hq, F, d] and z [B, Hq, F] over every key that is
// out of the softmax window (all keys when there is no window). `window` also keeps a ring of the last W raw keys and
// values [B, Hkv, W, d] (position p in slot p % W); `yoso` keeps its current group's (k̂, v) [B, Hkv, G, d] (rows
// [0, pos % G)) and nothing else.
struct BaselineAttentionState {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  Tensor S, z;
  Tensor buf_k, buf_v;
  int64_t pos = 0;  // tokens absorbed so far = the position of the next token

  BaselineAttentionState clone() const;  // deep copy (to try a continuation without committing it)
  int64_t bytes() const;               // bytes held by the state tensors (independent of the context length)
};
BaselineAttentionState baseline_attention_state(const BaselineAttentionConfig& cfg, int64_t batch, int64_t q_heads,
                                            int64_t kv_heads, int64_t head_dim, DType dtype = DType::F32,
                                            Device device = Device::CPU);

// One token at position state.pos: q [B, Hq, 1, d], k, v [B, Hkv, 1, d] -> [B, Hq, 1, d]; absorbs it.
Tensor baseline_attention_decode(const BaselineAttentionConfig& cfg, const BaselineAttentionParams& params,
                               BaselineAttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v);
// Absorbs n tokens k, v [B, Hkv, n, d] at positions pos .. pos+n−1 without producing outputs (after a parallel
// prefill, or an accepted path).
void baseline_attention_absorb(const BaselineAttentionConfig& cfg, const BaselineAttentionParams& params,
                             BaselineAttentionState& state, const Tensor& k, const Tensor& v);
// N candidate tokens forming a tree over the committed prefix (state, unchanged): parent[i] is −1 (follows the last
// committed token) or an earlier node. q [B, Hq, N, d], k, v [B, Hkv, N, d] -> [B, Hq, N, d]; node i's output equals
// the decode output at position pos + depth(i) after the prefix and i's root-to-node path.
// InputError on a malformed parent array.
Tensor baseline_attention_tree(const BaselineAttentionConfig& cfg, const BaselineAttentionParams& params,
                             const BaselineAttentionState& state, const std::vector<int32_t>& parent, const Tensor& q,
                             const Tensor& k, const Tensor& v);
// Folds the accepted path (node indices, root first, each the parent of the next; may be empty) of that tree into
// the state. InputError when `path` is not a root-to-node chain of `parent`.
void baseline_attention_advance(const BaselineAttentionConfig& cfg, const BaselineAttentionParams& params,
                              BaselineAttentionState& state, const std::vector<int32_t>& parent,
                              const std::vector<int32_t>& path, const Tensor& k, const Tensor& v);

}  // namespace linspec
