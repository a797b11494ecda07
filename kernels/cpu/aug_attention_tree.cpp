// Tree verification for the augmented linear attention (docs/method.md §3.3).
//
// Node i sits at position p = P + depth(i) on top of the committed prefix (state at P) and must reproduce the
// recurrent output there for prefix + its root-to-node path. With g = ⌊p/G⌋ and gP = ⌊P/G⌋ (the group the
// committed buffer belongs to):
//   local : g == gP ? committed buffer + whole path : path tokens at positions ≥ g·G
//   global: S + (g > gP ? committed buffer + path tokens at positions < g·G : nothing), times global_scale(g)
//   conv  : tap δ reads position p − δ from the path when ≥ P, else from the committed history ring.
// The state is only read; rejected branches therefore leave no trace.
#pragma GCC target("prefer-vector-width=512")  // as in aug_attention.cpp

#include <algorithm>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/aug_attention_common.h"
#include "kernels/aug_attention.h"

namespace linspec::kernels::cpu {
using namespace aug_detail;

template <typename T>
void aug_tree_forward(const AugDims& dm, AugBranches br, const AugStateRef<T>& st, const int32_t* parent,
                      const T* qhat, const T* khat, const T* v, const T* conv_w, const T* lambda_local_p, const T* lambda_global_p,
                      T* out) {
  const T lambda_local = lambda_local_p ? *lambda_local_p : T(1), lambda_global = lambda_global_p ? *lambda_global_p : T(1);
  const int64_t N = dm.seq, B = dm.batch, Hq = dm.q_heads, Hkv = dm.kv_heads, d = dm.head_dim, G = dm.group;
  const int64_t C = dm.taps, H = C - 1, rep = dm.rep(), P = st.pos, gP = P / G, committed = P % G;
  // Root-to-node paths (parents precede children, so one forward pass builds them).
  std::vector<std::vector<int32_t>> path(N);
  for (int64_t i = 0; i < N; ++i) {
    if (parent[i] >= 0) path[i] = path[parent[i]];
    path[i].push_back(static_cast<int32_t>(i));
  }

#pragma omp parallel for collapse(2) schedule(static) if (B * Hq * N * d * (d + G + C) > (1 << 16))
  for (int64_t bh = 0; bh < B * Hq; ++bh)
    for (int64_t i = 0; i < N; ++i) {
      const int64_t b = bh / Hq, h = bh % Hq, kv = b * Hkv + h / rep;
      const T* q = qhat + (bh * N + i) * d;
      const T* node_k = khat + kv * N * d;  // node n's k̂ at node_k + n·d
      const T* node_v = v + kv * N * d;
      const std::vector<int32_t>& pth = path[i];
      const int64_t depth = static_cast<int64_t>(pth.size()) - 1, p = P + depth, g = p / G;
      // Path index of the first token in node i's group (0 when the whole path is in it).
      const int64_t first_in_group = std::max<int64_t>(0, g * G - P);
      T* o = out + (bh * N + i) * d;
      std::fill(o, o + d, T(0));

      const T* buf_k = st.buf_k ? st.buf_k + kv * G * d : nullptr;
      const T* buf_v = st.buf_v ? st.buf_v + kv * G * d : nullptr;
      WeightedRows<T> wr(G + depth + d + C);
      // The committed buffer (when with_buffer) followed by path tokens a0 .. a1−1, weighted by weight(q̂ · k̂).
      auto add_tokens = [&](int64_t a0, int64_t a1, bool with_buffer, T scale, auto weight) {
        for (int64_t r = 0; with_buffer && r < committed; ++r)
          wr.add(scale * weight(dot(q, buf_k + r * d, d)), buf_v + r * d);
        for (int64_t a = a0; a < a1; ++a) wr.add(scale * weight(dot(q, node_k + pth[a] * d, d)), node_v + pth[a] * d);
      };
      if (br.local) add_tokens(first_in_group, depth + 1, g == gP, lambda_local, [](T x) { return relu_sq(x); });
      if (br.global) {
        const T* S = st.S + kv * d * d;
        const T lg = lambda_global * static_cast<T>(dm.global_scale(g));
        for (int64_t r = 0; r < d; ++r) wr.add(lg * q[r], S + r * d);
        // The path crossed into a new group: everything before g·G is global for this node.
        if (g > gP) add_tokens(0, first_in_group, true, lg, [](T x) { return x; });
      }
      if (br.conv) {  // tap δ reads position p − δ: from the path when ≥ P, else from the committed ring
        const T* w = conv_w + h * C;
        for (int64_t delta = 0; delta <= std::min(C - 1, p); ++delta) {
          const int64_t src = p - delta;
          wr.add(w[delta], src >= P ? node_v + pth[src - P] * d : st.hist_v + (kv * H + src % H) * d);
        }
      }
      wr.apply(d, o);
    }
}

namespace {
template <typename T>
void fill(AugKernels<T>& k) { k.tree_forward = &aug_tree_forward<T>; }
}  // namespace

void fill_aug_tree(Backend& b) {
  fill(b.f32.aug);
  fill(b.f64.aug);
}

}  // namespace linspec::kernels::cpu
