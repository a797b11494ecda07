// Raw kernels for the baseline linear attentions (docs/method.md §2) in their three forms (§3): the chunked
// parallel form with backward, and the state-based forms (decode = a one-node tree, tree verification, folding
// tokens into the state). No autograd here: attention/baselines/baseline_{ops,decode}.cpp wrap these into
// differentiable ops and the decode/tree API of attention/baselines/baseline_attention.h.
//
// Every kernelised preset is one "hybrid" attention over feature vectors f = φ(x) (F features per head):
//
//   e_ts  = exp(scale · q_t·k_s − m_t)                  for s in the softmax window t−W < s ≤ t (W = 0: none)
//   c_t   = γ · exp(−m_t)                               (W = 0: c_t = 1; m_t = the window's max score)
//   num_t = Σ_window e_ts v_s + c_t Σ_{s ≤ t−W} (fq_t·fk_s) v_s
//   den_t = Σ_window e_ts     + c_t Σ_{s ≤ t−W}  fq_t·fk_s
//   o_t   = num_t / (den_t + eps)   (normalize)   or   num_t   (no denominator)
//
// W = 0 gives the plain kernel form o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + eps); W > 0 the `window` hybrid (m_t cancels
// in the ratio, so it is treated as a constant in the backward; the window preset uses eps = 0 because den_t ≥ 1).
// `yoso` is not kernelised and has its own local-group kernels.
//
// Layouts are contiguous row-major. Query-side tensors are [B, Hq, T, ·]; k and v are [B, Hkv, T, d] and query
// head h reads kv head h / (Hq / Hkv). Key features fk are per *query* head ([B, Hq, T, F]) because a learnable
// map (hedgehog) belongs to the query head. f32 / f64 tables (CPU only so far: the CUDA backend leaves them null).
#pragma once
#include <cstdint>
#include <vector>

namespace linspec::kernels::baseline_attn {

// ---------------------------------------------------------------- feature maps (baseline_attention_features.cpp)
enum class FeatureMap { EluPlusOne, Relu, Performer, Cosformer, Hedgehog };

// Number of features F for head_dim d (performer: m = `features`).
int64_t feature_count(FeatureMap map, int64_t head_dim, int64_t features);

template <typename T>
struct FeatureSpec {
  FeatureMap map = FeatureMap::EluPlusOne;
  int64_t head_dim = 0, features = 0;  // d, F
  bool query_side = false;             // performer: subtract the per-token max of ωᵀx (cancels in the ratio)
  const T* omega = nullptr;            // performer [F, d]
  double max_len = 1;                  // cosformer M
  const T* weight = nullptr;           // hedgehog [Hq, d, d] (u = x W_h + b_h)
  const T* bias = nullptr;             // hedgehog [Hq, d]
};

// ---------------------------------------------------------------- hybrid kernel attention (baseline_attention.cpp)
struct HybridDims {
  int64_t batch = 1, q_heads = 1, kv_heads = 1;
  int64_t seq = 0;        // T (parallel) or N (tree nodes)
  int64_t head_dim = 0;   // d
  int64_t features = 0;   // F
  int64_t chunk = 64;     // parallel block size
  int64_t window = 0;     // W: softmax window (0: pure kernel form)
  bool normalize = true;  // divide by den + eps
  double eps = 1e-6;
  double scale = 0;  // softmax scale for the window part (1/sqrt(d))
  int64_t rep() const { return q_heads / kv_heads; }
};

template <typename T>
struct HybridInputs {
  const T* fq = nullptr;         // [B, Hq, T, F]
  const T* fk = nullptr;         // [B, Hq, T, F]
  const T* v = nullptr;          // [B, Hkv, T, d]
  const T* q = nullptr;          // [B, Hq, T, d]   window part only
  const T* k = nullptr;          // [B, Hkv, T, d]  window part only
  const T* mix_logit = nullptr;  // [Hq]: γ = σ(logit) weights the linear part when W > 0
};

// ---------------------------------------------------------------- trees (baseline_attention_tree.cpp)
// Root-to-node paths of a candidate tree given by a parent array (parent[i] = −1 or an earlier node).
struct TreeIndex {
  int64_t nodes = 0, max_depth = 0;  // max_depth = the longest path length (depth + 1)
  std::vector<int32_t> depth;        // depth[i] = 0 for children of the committed prefix
  std::vector<int32_t> path;         // [nodes, max_depth]: path[i * max_depth + j] = node at depth j on i's path
};
// Throws std::invalid_argument on a parent that is not −1 or an earlier node.
TreeIndex tree_index(const int32_t* parent, int64_t nodes);

// Read-only view of the committed state for the hybrid tree form. The committed prefix has length P = pos.
// Keys s < R0 = P − recent are folded into S [B, Hq, F, d] and z [B, Hq, F]; the `recent` keys at positions
// R0 .. P−1 (those still inside the softmax window; 0 when W = 0) are given in order. Only the oldest
// `recent_features` of them can leave the window inside the tree (max_depth − W + recent, clamped to [0, recent]),
// so only those need features.
template <typename T>
struct HybridStateView {
  const T* S = nullptr;
  const T* z = nullptr;
  int64_t pos = 0;
  int64_t recent = 0;
  const T* recent_k = nullptr;  // [B, Hkv, recent, d]
  const T* recent_v = nullptr;  // [B, Hkv, recent, d]
  int64_t recent_features = 0;
  const T* recent_fk = nullptr;  // [B, Hq, recent_features, F]
};

// ---------------------------------------------------------------- yoso (baseline_attention_local.cpp)
// o_t = Σ_{s ≤ t, ⌊s/G⌋ = ⌊t/G⌋} (1 − arccos(q̂_t·k̂_s)/π)^τ v_s on L2-normalised q̂, k̂ (no denominator, as the
// seed's local branch). The cosine is clamped to [−1 + 1e−6, 1 − 1e−6] so the weight stays differentiable.
struct LocalDims {
  int64_t batch = 1, q_heads = 1, kv_heads = 1;
  int64_t seq = 0, head_dim = 0;
  int64_t group = 64;  // G
  double tau = 8;
  int64_t rep() const { return q_heads / kv_heads; }
};

// ---------------------------------------------------------------- the device kernels of the forms above
template <typename T>
struct BaselineAttentionKernels {
  // x [B, Hin, rows, d] -> f [B, Hout, rows, F]; output head h reads input head h / (Hout / Hin) and uses its own
  // hedgehog parameters. pos[r] is the absolute position of row r (cosformer only; may be null otherwise).
  void (*feature_forward)(const FeatureSpec<T>& spec, int64_t batch, int64_t heads_in, int64_t heads_out, int64_t rows,
                          const T* x, const int64_t* pos, T* f);
  // Given df [B, Hout, rows, F]: dx [B, Hin, rows, d] (overwritten; summed over the output heads sharing an input
  // head) and, for hedgehog, dweight [Hq, d, d], dbias [Hq, d] (accumulated; either may be null).
  void (*feature_backward)(const FeatureSpec<T>& spec, int64_t batch, int64_t heads_in, int64_t heads_out, int64_t rows,
                           const T* x, const int64_t* pos, const T* df, T* dx, T* dweight, T* dbias);
  // ---- row-wise normalisations ----
  // x̂ = x / sqrt(|x|² + eps) per row of d (yoso's q̂, k̂).
  void (*l2_normalize)(const T* x, T* xhat, int64_t rows, int64_t d, T eps);
  void (*l2_normalize_backward)(const T* x, const T* dxhat, T* dx, int64_t rows, int64_t d, T eps);
  // y = x / sqrt(mean(x²) + eps) (· w[h] when w is non-null) over d, for x [B, H, rows, d] and w [H, d].
  void (*rms_norm_heads)(const T* x, const T* w, T* y, int64_t batch, int64_t heads, int64_t rows, int64_t d, T eps);
  // dx overwritten; dw [H, d] accumulated (may be null).
  void (*rms_norm_heads_backward)(const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t batch, int64_t heads,
                                  int64_t rows, int64_t d, T eps);
  // Parallel form, chunked: per query the state prefix at the last chunk boundary plus < chunk intra-chunk keys.
  void (*hybrid_forward)(const HybridDims& dm, const HybridInputs<T>& in, T* out);
  // Gradients of Σ dout ⊙ out. Overwritten: dfq, dfk [B, Hq, T, F], dv [B, Hkv, T, d]; when W > 0 also dq
  // [B, Hq, T, d], dk [B, Hkv, T, d] and dmix [Hq]. Pointers for absent parts may be null.
  void (*hybrid_backward)(const HybridDims& dm, const HybridInputs<T>& in, const T* dout, T* dfq, T* dfk, T* dv, T* dq,
                          T* dk, T* dmix);
  // Node i's output equals the recurrent output at position P + depth(i) for the prefix followed by its path.
  // in.* hold the N = dm.seq candidate tokens (fq/fk per query head, v/q/k as in the parallel form).
  void (*hybrid_tree_forward)(const HybridDims& dm, const HybridStateView<T>& st, const TreeIndex& tree,
                              const HybridInputs<T>& in, T* out);
  // S += Σ_r fk_r v_rᵀ, z += Σ_r fk_r over n rows: fk [B, Hq, n, F], v [B, Hkv, n, d].
  void (*fold_into_state)(const HybridDims& dm, int64_t n, const T* fk, const T* v, T* S, T* z);
  void (*yoso_forward)(const LocalDims& dm, const T* qhat, const T* khat, const T* v, T* out);
  // dqhat [B, Hq, T, d], dkhat / dv [B, Hkv, T, d], all overwritten.
  void (*yoso_backward)(const LocalDims& dm, const T* qhat, const T* khat, const T* v, const T* dout, T* dqhat, T* dkhat,
                        T* dv);
  // Tree form over a committed prefix of length pos whose current group's (k̂, v) are rows [0, pos % G) of
  // buf_k / buf_v [B, Hkv, G, d]. q̂ [B, Hq, N, d], k̂ / v [B, Hkv, N, d] -> out [B, Hq, N, d].
  void (*yoso_tree_forward)(const LocalDims& dm, const T* buf_k, const T* buf_v, int64_t pos, const TreeIndex& tree,
                            const T* qhat, const T* khat, const T* v, T* out);
};

}  // namespace linspec::kernels::baseline_attn
