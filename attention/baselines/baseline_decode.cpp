// State-based forms of the baseline linear attentions: the O(1) decode state, absorbing tokens, tree verification
// and advancing by an accepted path. A decode step is a one-node tree followed by absorbing its token, so decode
// and tree verification share one code path.
#include <algorithm>
#include <stdexcept>

#include "core/autograd.h"
#include "attention/baselines/baseline_support.h"

namespace linspec {
namespace {
namespace ks = baseline_attention_support;
namespace ka = kernels::baseline_attn;
using ops::detail::dispatch_float;

void check_state(const BaselineAttentionConfig& c, const BaselineAttentionState& st, const ks::Sizes& s, DType dtype,
                 const char* op) {
  LINSPEC_CHECK(
      st.batch == s.batch && st.q_heads == s.q_heads && st.kv_heads == s.kv_heads && st.head_dim == s.head_dim, op,
      ": state made for B=", st.batch, " Hq=", st.q_heads, " Hkv=", st.kv_heads, " d=", st.head_dim,
      ", inputs have B=", s.batch, " Hq=", s.q_heads, " Hkv=", s.kv_heads, " d=", s.head_dim);
  const Tensor& any = c.preset == BaselinePreset::Yoso ? st.buf_k : st.S;
  LINSPEC_CHECK(any.defined() && any.dtype() == dtype, op, ": state is missing or has another dtype than the inputs");
}

// Positions of a window's ring rows: position p lives in slot p % W.
std::vector<int64_t> ring_slots(int64_t first, int64_t count, int64_t W) {
  std::vector<int64_t> r(count);
  for (int64_t j = 0; j < count; ++j) r[j] = (first + j) % W;
  return r;
}

ks::Sizes kv_sizes(const BaselineAttentionState& st, const Tensor& k) {
  return {st.batch, st.q_heads, st.kv_heads, k.size(2), st.head_dim};
}

void absorb_yoso(const BaselineAttentionConfig& c, BaselineAttentionState& st, const Tensor& k, const Tensor& v) {
  const int64_t n = k.size(2), d = st.head_dim, G = c.group;
  Tensor kc = k.contiguous();
  Tensor kh = Tensor::empty(kc.shape(), kc.dtype(), kc.device());
  dispatch_float(kc.dtype(), "yoso absorb", [&](auto t) {
    using T_ = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T_>(kc).baseline_attn.l2_normalize, "l2_normalize", kc)(
        kc.device_data<T_>(), kh.device_data<T_>(), kc.numel() / d, d, static_cast<T_>(ks::kL2Eps));
  });
  // Only the tokens of the group the state ends in are kept; earlier groups are never read again.
  const int64_t end = st.pos + n, keep_from = std::max(st.pos, G * ((end - 1) / G));
  std::vector<int64_t> src, dst;
  for (int64_t p = keep_from; p < end; ++p) src.push_back(p - st.pos), dst.push_back(p % G);
  ks::copy_rows(kh, src, st.buf_k, dst);
  ks::copy_rows(v, src, st.buf_v, dst);
  st.pos = end;
}

// Keys leave the softmax window W (all keys, immediately, when W = 0) and are folded into S, z.
void absorb_kernel(const BaselineAttentionConfig& c, const BaselineAttentionParams& params, BaselineAttentionState& st,
                   const Tensor& k, const Tensor& v) {
  const ks::Sizes s = kv_sizes(st, k);
  const int64_t n = s.len, W = ks::window_of(c), pos = st.pos;
  const ks::ParamsIn pin = ks::params_in(c, params, s.q_heads, s.head_dim, k.dtype());
  const int64_t first = std::max<int64_t>(0, pos - W), last = pos + n - 1 - W;  // positions leaving the window
  if (last >= first) {
    const int64_t count = last - first + 1;
    Tensor kl = Tensor::empty({s.batch, s.kv_heads, count, s.head_dim}, k.dtype(), k.device());
    Tensor vl = Tensor::empty(kl.shape(), k.dtype(), k.device());
    const int64_t from_ring = std::min(last + 1, pos) - first;  // the rest are new tokens
    if (from_ring > 0) {
      const auto slots = ring_slots(first, from_ring, W);
      ks::copy_rows(st.buf_k, slots, kl, ks::positions(0, from_ring));
      ks::copy_rows(st.buf_v, slots, vl, ks::positions(0, from_ring));
    }
    if (count > from_ring) {
      const auto rows = ks::positions(std::max(first, pos) - pos, count - from_ring);
      ks::copy_rows(k, rows, kl, ks::positions(from_ring, count - from_ring));
      ks::copy_rows(v, rows, vl, ks::positions(from_ring, count - from_ring));
    }
    Tensor fk = ks::features(c, pin, kl, s.q_heads, ks::positions(first, count), /*query_side=*/false);
    ka::HybridDims dm = ks::hybrid_dims(c, s);
    dispatch_float(k.dtype(), "kernel attention fold", [&](auto t) {
      using T_ = decltype(t);
      ops::detail::kernel(ops::detail::float_kernels<T_>(fk).baseline_attn.fold_into_state, "fold_into_state", fk)(
          dm, count, fk.device_data<T_>(), vl.device_data<T_>(), st.S.device_data<T_>(), st.z.device_data<T_>());
    });
  }
  if (W > 0) {  // the newest min(n, W) tokens enter the ring
    const int64_t j0 = std::max<int64_t>(0, n - W);
    const auto rows = ks::positions(j0, n - j0);
    ks::copy_rows(k, rows, st.buf_k, ring_slots(pos + j0, n - j0, W));
    ks::copy_rows(v, rows, st.buf_v, ring_slots(pos + j0, n - j0, W));
  }
  st.pos = pos + n;
}

ka::TreeIndex checked_tree(const std::vector<int32_t>& parent) {
  try {
    return ka::tree_index(parent.data(), static_cast<int64_t>(parent.size()));
  } catch (const std::invalid_argument& e) {
    throw_input_error("kernel attention ", e.what());
  }
}

Tensor tree_kernel(const BaselineAttentionConfig& c, const BaselineAttentionParams& params, const BaselineAttentionState& st,
                   const ka::TreeIndex& tree, const ks::Sizes& s, const Tensor& q_in, const Tensor& k_in,
                   const Tensor& v_in) {
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const ks::ParamsIn pin = ks::params_in(c, params, s.q_heads, s.head_dim, q.dtype());
  const int64_t P = st.pos, W = ks::window_of(c), N = s.len;
  std::vector<int64_t> node_pos(N);
  for (int64_t i = 0; i < N; ++i) node_pos[i] = P + tree.depth[i];
  Tensor fq = ks::features(c, pin, q, s.q_heads, node_pos, /*query_side=*/true);
  Tensor fk = ks::features(c, pin, k, s.q_heads, node_pos, /*query_side=*/false);
  // Committed keys still inside the window (positions P − recent .. P − 1), in order; features only for the oldest
  // ones, which the tree's deepest nodes see leave the window.
  const int64_t recent = std::min(W, P);
  const int64_t featured = std::clamp<int64_t>(tree.max_depth - W + recent, 0, recent);
  Tensor rk, rv, rf;
  if (recent > 0) {
    const auto slots = ring_slots(P - recent, recent, W);
    rk = ks::gather_rows(st.buf_k, slots);
    rv = ks::gather_rows(st.buf_v, slots);
  }
  if (featured > 0)
    rf = ks::features(c, pin, ks::gather_rows(rk, ks::positions(0, featured)), s.q_heads,
                      ks::positions(P - recent, featured), /*query_side=*/false);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  const ka::HybridDims dm = ks::hybrid_dims(c, s);
  dispatch_float(q.dtype(), "kernel attention tree", [&](auto t) {
    using T_ = decltype(t);
    ka::HybridStateView<T_> view;
    view.S = st.S.device_data<T_>(), view.z = st.z.device_data<T_>(), view.pos = P, view.recent = recent;
    if (recent > 0) view.recent_k = rk.device_data<T_>(), view.recent_v = rv.device_data<T_>();
    view.recent_features = featured;
    if (featured > 0) view.recent_fk = rf.device_data<T_>();
    ka::HybridInputs<T_> in;
    in.fq = fq.device_data<T_>(), in.fk = fk.device_data<T_>(), in.v = v.device_data<T_>();
    if (W > 0) in.q = q.device_data<T_>(), in.k = k.device_data<T_>(), in.mix_logit = pin.mix.device_data<T_>();
    ops::detail::kernel(ops::detail::float_kernels<T_>(out).baseline_attn.hybrid_tree_forward, "hybrid_tree_forward",
                        out)(dm, view, tree, in, out.device_data<T_>());
    if (c.preset == BaselinePreset::Transnormer)
      ops::detail::kernel(ops::detail::float_kernels<T_>(out).baseline_attn.rms_norm_heads, "rms_norm_heads", out)(
          out.device_data<T_>(), pin.norm_w.defined() ? pin.norm_w.device_data<T_>() : nullptr, out.device_data<T_>(),
          s.batch, s.q_heads, N, s.head_dim, static_cast<T_>(c.norm_eps));
  });
  return out;
}

Tensor tree_yoso(const BaselineAttentionConfig& c, const BaselineAttentionState& st, const ka::TreeIndex& tree,
                 const ks::Sizes& s, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  Tensor qh = Tensor::empty(q.shape(), q.dtype(), q.device()), kh = Tensor::empty(k.shape(), k.dtype(), k.device());
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  const int64_t d = s.head_dim;
  dispatch_float(q.dtype(), "yoso tree", [&](auto t) {
    using T_ = decltype(t);
    const T_ eps = static_cast<T_>(ks::kL2Eps);
    ops::detail::kernel(ops::detail::float_kernels<T_>(q).baseline_attn.l2_normalize, "l2_normalize", q)(
        q.device_data<T_>(), qh.device_data<T_>(), q.numel() / d, d, eps);
    ops::detail::kernel(ops::detail::float_kernels<T_>(k).baseline_attn.l2_normalize, "l2_normalize", k)(
        k.device_data<T_>(), kh.device_data<T_>(), k.numel() / d, d, eps);
    ops::detail::kernel(ops::detail::float_kernels<T_>(st.buf_k).baseline_attn.yoso_tree_forward, "yoso_tree_forward",
                        st.buf_k)(ks::local_dims(c, s), st.buf_k.device_data<T_>(), st.buf_v.device_data<T_>(), st.pos,
                                  tree, qh.device_data<T_>(), kh.device_data<T_>(), v.device_data<T_>(),
                                  out.device_data<T_>());
  });
  return out;
}

}  // namespace

BaselineAttentionState baseline_attention_state(const BaselineAttentionConfig& c, int64_t B, int64_t Hq, int64_t Hkv,
                                            int64_t d, DType dtype, Device dev) {
  c.validate();
  LINSPEC_CHECK(B > 0 && Hkv > 0 && Hq % Hkv == 0 && d > 0, "baseline_attention_state: bad sizes B=", B, " Hq=", Hq,
                " Hkv=", Hkv, " d=", d);
  BaselineAttentionState st;
  st.batch = B, st.q_heads = Hq, st.kv_heads = Hkv, st.head_dim = d;
  if (c.preset == BaselinePreset::Yoso) {
    st.buf_k = Tensor::zeros({B, Hkv, c.group, d}, dtype, dev);
    st.buf_v = Tensor::zeros({B, Hkv, c.group, d}, dtype, dev);
    return st;
  }
  const int64_t F = baseline_feature_count(c, d);
  st.S = Tensor::zeros({B, Hq, F, d}, dtype, dev);
  st.z = Tensor::zeros({B, Hq, F}, dtype, dev);
  if (ks::has_window(c)) {
    st.buf_k = Tensor::zeros({B, Hkv, c.window, d}, dtype, dev);
    st.buf_v = Tensor::zeros({B, Hkv, c.window, d}, dtype, dev);
  }
  return st;
}

BaselineAttentionState BaselineAttentionState::clone() const {
  BaselineAttentionState c = *this;
  for (Tensor* t : {&c.S, &c.z, &c.buf_k, &c.buf_v})
    if (t->defined()) *t = t->clone();
  return c;
}

int64_t BaselineAttentionState::bytes() const {
  int64_t n = 0;
  for (const Tensor* t : {&S, &z, &buf_k, &buf_v})
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  return n;
}

void baseline_attention_absorb(const BaselineAttentionConfig& c, const BaselineAttentionParams& params,
                             BaselineAttentionState& st, const Tensor& k, const Tensor& v) {
  NoGradGuard no_grad;
  ops::detail::check_float(k, "baseline_attention_absorb", "k");
  ops::detail::check_same_dtype(k, v, "baseline_attention_absorb");
  LINSPEC_CHECK(k.dim() == 4 && k.shape() == v.shape() && k.size(0) == st.batch && k.size(1) == st.kv_heads &&
                    k.size(3) == st.head_dim,
                "baseline_attention_absorb: k, v must be [", st.batch, ", ", st.kv_heads, ", n, ", st.head_dim, "], got ",
                shape_str(k.shape()), " and ", shape_str(v.shape()));
  check_state(c, st, kv_sizes(st, k), k.dtype(), "baseline_attention_absorb");
  if (k.size(2) == 0) return;
  if (c.preset == BaselinePreset::Yoso)
    absorb_yoso(c, st, k, v);
  else
    absorb_kernel(c, params, st, k, v);
}

Tensor baseline_attention_tree(const BaselineAttentionConfig& c, const BaselineAttentionParams& params,
                             const BaselineAttentionState& st, const std::vector<int32_t>& parent, const Tensor& q,
                             const Tensor& k, const Tensor& v) {
  NoGradGuard no_grad;
  const ks::Sizes s = ks::check_qkv(q, k, v, "baseline_attention_tree");
  check_state(c, st, s, q.dtype(), "baseline_attention_tree");
  if (static_cast<int64_t>(parent.size()) != s.len)
    throw_input_error("kernel attention tree: ", parent.size(), " parents for ", s.len, " nodes");
  const ka::TreeIndex tree = checked_tree(parent);
  if (c.preset == BaselinePreset::Yoso) return tree_yoso(c, st, tree, s, q, k, v);
  return tree_kernel(c, params, st, tree, s, q, k, v);
}

Tensor baseline_attention_decode(const BaselineAttentionConfig& c, const BaselineAttentionParams& params,
                               BaselineAttentionState& st, const Tensor& q, const Tensor& k, const Tensor& v) {
  LINSPEC_CHECK(q.dim() == 4 && q.size(2) == 1, "baseline_attention_decode: q must be [B, Hq, 1, d], got ",
                shape_str(q.shape()));
  Tensor out = baseline_attention_tree(c, params, st, {-1}, q, k, v);
  baseline_attention_absorb(c, params, st, k, v);
  return out;
}

void baseline_attention_advance(const BaselineAttentionConfig& c, const BaselineAttentionParams& params,
                              BaselineAttentionState& st, const std::vector<int32_t>& parent,
                              const std::vector<int32_t>& path, const Tensor& k, const Tensor& v) {
  const int64_t N = static_cast<int64_t>(parent.size());
  LINSPEC_CHECK(k.dim() == 4 && k.size(2) == N, "baseline_attention_advance: k has ", k.dim() == 4 ? k.size(2) : -1,
                " rows for a tree of ", N, " nodes");
  std::vector<int64_t> rows;
  for (size_t j = 0; j < path.size(); ++j) {
    const int32_t node = path[j];
    const int32_t expected_parent = j == 0 ? -1 : path[j - 1];
    if (node < 0 || node >= N || parent[node] != expected_parent)
      throw_input_error("kernel attention advance: accepted path entry ", j, " (node ", node, ") is not a child of ",
                        j == 0 ? std::string("the committed prefix") : "node " + std::to_string(expected_parent));
    rows.push_back(node);
  }
  if (rows.empty()) return;
  NoGradGuard no_grad;
  baseline_attention_absorb(c, params, st, ks::gather_rows(k, rows), ks::gather_rows(v, rows));
}

}  // namespace linspec
