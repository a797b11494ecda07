// Raw kernels for the augmented linear attention (docs/method.md §1, §3): the chunked parallel form
// (forward + backward), the recurrent decode step and tree verification. No autograd here; attention/aug/aug_attention.h
// wraps these into the differentiable op and the decode/tree API.
//
// Layouts are contiguous row-major: q [B, Hq, T, d], k/v [B, Hkv, T, d]; query head h reads kv head
// h / (Hq / Hkv). The parallel form takes raw q, k and normalises them itself (q̂ = q / sqrt(|q|² + eps)); the decode
// and tree kernels take normalised q̂, k̂ (see l2_normalize_rows). v is used as is.
// f32 / f64 tables; each backend parallelises over (batch, head).
#pragma once
#include <cstdint>

namespace linspec::kernels {

struct AugDims {
  int64_t batch = 1, q_heads = 1, kv_heads = 1;
  int64_t seq = 0;       // T (parallel form) or N (tree nodes); unused by the decode step
  int64_t head_dim = 0;  // d
  int64_t group = 64;    // G
  int64_t taps = 32;     // C (causal conv taps)
  double eps = 1e-6;     // L2-norm epsilon (parallel form)
  bool global_mean = false;  // global term divided by the tokens it sums over (docs/method.md §1, global_mean)
  int64_t rep() const { return q_heads / kv_heads; }
  int64_t groups() const { return (seq + group - 1) / group; }
  // Factor on the global term of a token in group g: 1 (the seed's sum), or 1 / (g·G) under global_mean — the
  // g complete groups before g hold exactly g·G tokens because groups are aligned to position 0.
  double global_scale(int64_t g) const { return global_mean && g > 0 ? 1.0 / static_cast<double>(g * group) : 1.0; }
};

constexpr int64_t kMaxTreePath = 64;  // longest root-to-node path tree_forward takes (the GPU keeps it in shared memory)

struct AugBranches {
  bool local = true, global = true, conv = true;
};

// ---- recurrent state (one layer), see attention/aug/aug_attention.h for the owning struct ----
// S [B, Hkv, d, d]   Σ k̂ vᵀ over complete groups (null when !global)
// buf_k, buf_v [B, Hkv, G, d]   the current group's (k̂, v); rows [0, pos % G) are valid (null when neither
//                               local nor global is on)
// hist_v [B, Hkv, C-1, d]   ring of the last C−1 values of v, position p in slot p % (C−1) (null when !conv
//                           or C == 1)
template <typename T>
struct AugStateRef {
  T* S = nullptr;
  T* buf_k = nullptr;
  T* buf_v = nullptr;
  T* hist_v = nullptr;
  int64_t pos = 0;  // tokens absorbed so far (absolute position of the next token)
};

template <typename T>
struct AugKernels {
  // ---- L2 normalisation: x̂ = x / sqrt(|x|² + eps) per row of d; rinv[row] = 1 / sqrt(|x|² + eps). ----
  // (Its derivative dx = rinv · (dx̂ − x̂ (x̂ · dx̂)) is finite at x = 0; backward applies it internally.)
  void (*l2_normalize_rows)(const T* x, T* xhat, T* rinv, int64_t rows, int64_t d, T eps);

  // ---- parallel (training) form, chunked over groups of G ----
  // The global term's group states, per kv head: states [B, Hkv, groups, d, d] with
  // S_g = global_scale(g) · Σ_{g'<g} K̂_{g'}ᵀ V_{g'} (S_0 = 0). Needed by forward / backward when the global branch
  // is on (they read it, never write it). The decode state's S is the plain sum; its readers apply global_scale.
  void (*group_states)(const AugDims& dm, const T* k, const T* v, T* states);

  // λ arguments: one element each in this backend's memory, read by the kernel (never by the host, so a learnable
  // λ on a GPU costs no synchronisation); null means 1.
  // out [B, Hq, T, d] = λl·local + λg·global + conv over the enabled branches. Optional (nullable) outputs receive
  // the unscaled branches local_t, global_t, conv_t, each [B, Hq, T, d] (diagnostics). conv_w [Hq, C]. states may
  // be null when !br.global, conv_w when !br.conv.
  void (*forward)(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                  const T* conv_w, const T* lambda_local, const T* lambda_global, T* out, T* local_out, T* global_out, T* conv_out);

  // Gradients of sum(dout ⊙ out) w.r.t. q [B,Hq,T,d], k [B,Hkv,T,d], v [B,Hkv,T,d] (through the normalisation),
  // conv_w [Hq,C] and the two scalars (one element each, device memory). All outputs are overwritten (zero for branches that are
  // off). dconv_w may be null when !br.conv.
  void (*backward)(const AugDims& dm, AugBranches br, const T* q, const T* k, const T* v, const T* states,
                   const T* conv_w, const T* lambda_local, const T* lambda_global, const T* dout, T* dq, T* dk, T* dv, T* dconv_w,
                   T* dlambda_local, T* dlambda_global);

  // One decode token at position st.pos: q̂ [B, Hq, d], k̂ / v [B, Hkv, d] -> out [B, Hq, d]; then absorbs the
  // token into the state (the caller advances pos by one).
  void (*decode_step)(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* qhat, const T* khat,
                      const T* v, const T* conv_w, const T* lambda_local, const T* lambda_global, T* out);

  // decode_step for dm.batch sequences at once, each with its own batch-1 state states[b] at its own position:
  // q̂ [B, Hq, d], k̂ / v [B, Hkv, d] (row b is sequence b's token) -> out [B, Hq, d]; row b equals decode_step on
  // states[b] alone. One call (one pass over all sequences' heads) where B calls of decode_step make B. Optional:
  // null where a backend has none (callers then make the B calls).
  void (*decode_step_many)(const AugDims& dm, AugBranches br, const AugStateRef<T>* states, const T* qhat,
                           const T* khat, const T* v, const T* conv_w, const T* lambda_local, const T* lambda_global,
                           T* out) = nullptr;

  // Absorbs n tokens k̂ / v [B, Hkv, n, d] at positions st.pos .. st.pos + n − 1 without producing outputs
  // (prefill, accepted speculative paths). The caller advances pos by n.
  void (*absorb)(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const T* khat, const T* v, int64_t n);

  // ---- tree verification ----
  // N = dm.seq candidate nodes over a committed prefix of length st.pos (read only). parent [N] (int32, in this
  // backend's memory) holds −1 (child of the last committed token) or an earlier node (< i); paths are at most
  // kMaxTreePath nodes long. q̂ [B, Hq, N, d], k̂ / v [B, Hkv, N, d] -> out [B, Hq, N, d]:
  // node i's output equals the recurrent output at position pos + depth(i) for prefix + its root-to-node path.
  void (*tree_forward)(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const int32_t* parent,
                       const T* qhat, const T* khat, const T* v, const T* conv_w, const T* lambda_local, const T* lambda_global,
                       T* out);
};

}  // namespace linspec::kernels
