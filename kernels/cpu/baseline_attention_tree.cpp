// State-based forms of the hybrid kernel attention: tree verification over a committed prefix (a decode step is
// a one-node tree) and folding keys into the state.
#include <stdexcept>
#include <string>

#include "kernels/cpu/baseline_attention_common.h"
#include "kernels/backend.h"

namespace linspec::kernels::baseline_attn {

TreeIndex tree_index(const int32_t* parent, int64_t nodes) {
  TreeIndex t;
  t.nodes = nodes;
  t.depth.resize(nodes);
  for (int64_t i = 0; i < nodes; ++i) {
    if (parent[i] < -1 || parent[i] >= i)
      throw std::invalid_argument("tree: parent[" + std::to_string(i) + "] = " + std::to_string(parent[i]) +
                                  " (must be -1 or an earlier node)");
    t.depth[i] = parent[i] < 0 ? 0 : t.depth[parent[i]] + 1;
    t.max_depth = std::max<int64_t>(t.max_depth, t.depth[i] + 1);
  }
  t.path.assign(nodes * t.max_depth, -1);
  for (int64_t i = 0; i < nodes; ++i)
    for (int64_t n = i; n >= 0; n = parent[n]) t.path[i * t.max_depth + t.depth[n]] = static_cast<int32_t>(n);
  return t;
}

template <typename T>
void hybrid_tree_forward(const HybridDims& dm, const HybridStateView<T>& st, const TreeIndex& tree,
                         const HybridInputs<T>& in, T* out) {
  const int64_t Hq = dm.q_heads, Hkv = dm.kv_heads, N = dm.seq, d = dm.head_dim, F = dm.features, W = dm.window;
  const int64_t rep = dm.rep(), P = st.pos, R0 = P - st.recent;
  const T eps = W > 0 ? T(0) : static_cast<T>(dm.eps);  // as in the parallel form
  const int64_t work = dm.batch * Hq * N * (F * d + (W + tree.max_depth) * (F + d));
#pragma omp parallel for collapse(2) schedule(static) if (work > detail::kParallelMinWork)
  for (int64_t b = 0; b < dm.batch; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t qh = b * Hq + h, kvh = b * Hkv + h / rep;
      const detail::PointOptions<T> opt{d, F, W, static_cast<T>(dm.scale),
                                        W > 0 ? detail::sigmoid(in.mix_logit[h]) : T(1)};
      const T* S = st.S + qh * F * d;
      const T* z = st.z + qh * F;
      detail::PointEval<T> r(d, W);
      for (int64_t i = 0; i < N; ++i) {
        const int32_t* path = tree.path.data() + i * tree.max_depth;
        // Key s: committed (still in the window) below P, else the ancestor of node i at depth s − P.
        auto keys = [&](int64_t s) {
          if (s < P) {
            const int64_t j = s - R0;
            const T* f = j < st.recent_features ? st.recent_fk + (qh * st.recent_features + j) * F : nullptr;
            return detail::KeyRef<T>{W > 0 ? st.recent_k + (kvh * st.recent + j) * d : nullptr,
                                     st.recent_v + (kvh * st.recent + j) * d, f};
          }
          const int64_t n = path[s - P];
          return detail::KeyRef<T>{W > 0 ? in.k + (kvh * N + n) * d : nullptr, in.v + (kvh * N + n) * d,
                                   in.fk + (qh * N + n) * F};
        };
        const int64_t p = P + tree.depth[i];
        eval_point(opt, W > 0 ? in.q + (qh * N + i) * d : nullptr, in.fq + (qh * N + i) * F, p, S, z, R0, keys, r);
        const T inv = dm.normalize ? T(1) / (r.den + eps) : T(1);
        T* o = out + (qh * N + i) * d;
        for (int64_t c = 0; c < d; ++c) o[c] = r.num[c] * inv;
      }
    }
}

template <typename T>
void fold_into_state(const HybridDims& dm, int64_t n, const T* fk, const T* v, T* S, T* z) {
  const int64_t Hq = dm.q_heads, d = dm.head_dim, F = dm.features, rep = dm.rep();
#pragma omp parallel for collapse(2) schedule(static) if (dm.batch * Hq * n * F * d > detail::kParallelMinWork)
  for (int64_t b = 0; b < dm.batch; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t qh = b * Hq + h, kvh = b * dm.kv_heads + h / rep;
      for (int64_t r = 0; r < n; ++r) {
        const T* f = fk + (qh * n + r) * F;
        detail::add_outer(f, v + (kvh * n + r) * d, S + qh * F * d, F, d);
        detail::axpy(T(1), f, z + qh * F, F);
      }
    }
}

namespace {
template <typename T>
void fill(BaselineAttentionKernels<T>& k) {
  k.hybrid_tree_forward = &hybrid_tree_forward<T>;
  k.fold_into_state = &fold_into_state<T>;
}
}  // namespace

namespace cpu {
void fill_baseline_attention_tree(Backend& b) {
  fill(b.f32.baseline_attn);
  fill(b.f64.baseline_attn);
}
}  // namespace cpu

}  // namespace linspec::kernels::baseline_attn
