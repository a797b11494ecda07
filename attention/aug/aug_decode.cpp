// Recurrent decode state, one-token step, prefill absorption, tree verification and path commit for the
// augmented linear attention (kernels: kernels/{cpu,cuda}/aug_attention_decode.* and aug_attention_tree.*).

#include <algorithm>

#include "attention/aug/aug_support.h"
#include "core/tensor_rows.h"

namespace linspec {
namespace {
namespace k = kernels;
using namespace aug_support;

bool needs_buffer(const AugConfig& c) { return c.use_local || c.use_global; }
bool needs_history(const AugConfig& c) { return c.use_conv && c.conv_taps > 1; }

template <typename T>
k::AugStateRef<T> ref(const AugState& s) {
  auto p = [](const Tensor& t) { return t.defined() ? t.device_data<T>() : nullptr; };
  return {p(s.S), p(s.buf_k), p(s.buf_v), p(s.hist_v), s.pos};
}

k::AugDims state_dims(const AugState& s, int64_t seq) {
  return dims(s.cfg, s.batch, s.q_heads, s.kv_heads, seq, s.head_dim);
}

void check_matches_state(const AugState& s, const Tensor& q, const Tensor& kk, const char* op) {
  LINSPEC_CHECK(s.batch > 0, op, ": the state was never initialised");
  LINSPEC_CHECK(q.dtype() == s.dtype, op, ": inputs are ", dtype_name(q.dtype()), " but the state is ",
                dtype_name(s.dtype));
  LINSPEC_CHECK(q.size(0) == s.batch && q.size(1) == s.q_heads && kk.size(1) == s.kv_heads && q.size(-1) == s.head_dim,
                op, ": q ", shape_str(q.shape()), " / k ", shape_str(kk.shape()),
                " do not match the state (B=", s.batch, ", Hq=", s.q_heads, ", Hkv=", s.kv_heads, ", d=", s.head_dim,
                ")");
}

// [B, H, d] view of a [B, H, d] or [B, H, 1, d] token tensor.
Tensor token_view(const Tensor& x, const char* op, const char* name) {
  LINSPEC_CHECK(x.dim() == 3 || (x.dim() == 4 && x.size(2) == 1), op, ": ", name,
                " must be [B, H, d] or [B, H, 1, d], got ", shape_str(x.shape()));
  return x.dim() == 3 ? x : x.select(2, 0);
}

// What the step and tree kernels read besides the state: q̂ and k̂ normalised, v contiguous, the conv taps and the
// λ operands (null-or-one-element, kernels/aug_attention.h).
struct KernelOperands {
  Tensor qhat, khat, v, conv_w, lambda_local, lambda_global;
};
KernelOperands kernel_operands(const AugState& s, const Tensor& q, const Tensor& kk, const Tensor& v,
                               const Tensor& conv_w, const Tensor& lambda_local, const Tensor& lambda_global) {
  KernelOperands o;
  o.qhat = normalize(q, s.cfg.eps), o.khat = normalize(kk, s.cfg.eps), o.v = v.contiguous();
  o.conv_w = conv_weights(s.cfg, conv_w, s.q_heads, s.dtype);
  o.lambda_local = lambda_operand(lambda_local, "lambda_local", o.qhat);
  o.lambda_global = lambda_operand(lambda_global, "lambda_global", o.qhat);
  return o;
}

// Normalised k̂ and contiguous v, then kernel absorption of x.size(2) tokens.
void absorb_tokens(AugState& s, const Tensor& kk, const Tensor& v) {
  const int64_t n = kk.size(2);
  if (n == 0) return;
  Tensor khat = normalize(kk, s.cfg.eps);
  Tensor vc = v.contiguous();
  ops::detail::dispatch_float(s.dtype, "aug_absorb", [&](auto t) {
    using T = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T>(khat).aug.absorb, "aug_absorb", khat)(
        state_dims(s, n), branches(s.cfg), ref<T>(s), khat.device_data<T>(), vc.device_data<T>(), n);
  });
  s.pos += n;
}
}  // namespace

AugState::AugState(const AugConfig& c, int64_t B, int64_t Hq, int64_t Hkv, int64_t d, DType dt, Device dev)
    : cfg(c), batch(B), q_heads(Hq), kv_heads(Hkv), head_dim(d), dtype(dt) {
  cfg.validate();
  LINSPEC_CHECK(B > 0 && Hkv > 0 && Hq % Hkv == 0 && d > 0, "AugState: bad shape B=", B, " Hq=", Hq, " Hkv=", Hkv,
                " d=", d);
  LINSPEC_CHECK(dt == DType::F32 || dt == DType::F64, "AugState: dtype must be f32 or f64");
  if (cfg.use_global) S = Tensor::zeros({B, Hkv, d, d}, dt, dev);
  if (needs_buffer(cfg)) {
    buf_k = Tensor::zeros({B, Hkv, cfg.group_size, d}, dt, dev);
    buf_v = Tensor::zeros({B, Hkv, cfg.group_size, d}, dt, dev);
  }
  if (needs_history(cfg)) hist_v = Tensor::zeros({B, Hkv, cfg.conv_taps - 1, d}, dt, dev);
}

AugState AugState::clone() const {
  AugState c = *this;
  for (Tensor* t : {&c.S, &c.buf_k, &c.buf_v, &c.hist_v})
    if (t->defined()) *t = t->clone();
  return c;
}

int64_t AugState::bytes() const {
  int64_t n = 0;
  for (const Tensor* t : {&S, &buf_k, &buf_v, &hist_v})
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  return n;
}

int64_t aug_state_bytes(const AugConfig& cfg, int64_t batch, int64_t kv_heads, int64_t d, DType dtype) {
  int64_t elems = 0;
  if (cfg.use_global) elems += d * d;
  if (needs_buffer(cfg)) elems += 2 * cfg.group_size * d;
  if (needs_history(cfg)) elems += (cfg.conv_taps - 1) * d;
  return batch * kv_heads * elems * static_cast<int64_t>(dtype_size(dtype));
}

Tensor aug_step(AugState& s, const Tensor& q, const Tensor& kk, const Tensor& v, const Tensor& conv_w,
                const Tensor& lambda_local, const Tensor& lambda_global) {
  Tensor q3 = token_view(q, "aug_step", "q"), k3 = token_view(kk, "aug_step", "k"), v3 = token_view(v, "aug_step", "v");
  check_qkv(q3, k3, v3, 3, "aug_step");
  check_matches_state(s, q3, k3, "aug_step");
  const KernelOperands o = kernel_operands(s, q3, k3, v3, conv_w, lambda_local, lambda_global);
  Tensor out = Tensor::empty(q3.shape(), s.dtype, q3.device());
  ops::detail::dispatch_float(s.dtype, "aug_step", [&](auto t) {
    using T = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T>(o.qhat).aug.decode_step, "aug_decode_step", o.qhat)(
        state_dims(s, 1), branches(s.cfg), ref<T>(s), o.qhat.device_data<T>(), o.khat.device_data<T>(),
        o.v.device_data<T>(), data_or_null<T>(o.conv_w), data_or_null<T>(o.lambda_local),
        data_or_null<T>(o.lambda_global), out.device_data<T>());
  });
  ++s.pos;
  return out.view(q.shape());
}

Tensor aug_step_many(const std::vector<AugState*>& states, const Tensor& q, const Tensor& kk, const Tensor& v,
                     const Tensor& conv_w, const Tensor& lambda_local, const Tensor& lambda_global) {
  const int64_t N = static_cast<int64_t>(states.size());
  LINSPEC_CHECK(N >= 1, "aug_step_many: no states");
  check_qkv(q, kk, v, 3, "aug_step_many");
  const AugState& first = *states[0];
  LINSPEC_CHECK(q.size(0) == N, "aug_step_many: ", q.size(0), " tokens for ", N, " states");
  for (const AugState* s : states)
    LINSPEC_CHECK(s && s->batch == 1 && s->q_heads == first.q_heads && s->kv_heads == first.kv_heads &&
                      s->head_dim == first.head_dim && s->dtype == first.dtype,
                  "aug_step_many: every state must be a batch-1 state of one mixer");
  check_matches_state(first, q.slice(0, 0, 1), kk.slice(0, 0, 1), "aug_step_many");
  const KernelOperands o = kernel_operands(first, q, kk, v, conv_w, lambda_local, lambda_global);
  Tensor out = Tensor::empty(q.shape(), first.dtype, q.device());
  const int64_t Hq = first.q_heads, Hkv = first.kv_heads, d = first.head_dim;
  ops::detail::dispatch_float(first.dtype, "aug_step_many", [&](auto t) {
    using T = decltype(t);
    const auto& kernels = ops::detail::float_kernels<T>(o.qhat).aug;
    const T *qp = o.qhat.device_data<T>(), *kp = o.khat.device_data<T>(), *vp = o.v.device_data<T>();
    const T *w = data_or_null<T>(o.conv_w), *ll = data_or_null<T>(o.lambda_local), *lg = data_or_null<T>(o.lambda_global);
    T* op = out.device_data<T>();
    if (kernels.decode_step_many) {
      std::vector<k::AugStateRef<T>> refs;
      for (const AugState* s : states) refs.push_back(ref<T>(*s));
      kernels.decode_step_many(dims(first.cfg, N, Hq, Hkv, 1, d), branches(first.cfg), refs.data(), qp, kp, vp, w, ll,
                               lg, op);
    } else {
      const auto step = ops::detail::kernel(kernels.decode_step, "aug_decode_step", o.qhat);
      for (int64_t n = 0; n < N; ++n)
        step(state_dims(*states[n], 1), branches(first.cfg), ref<T>(*states[n]), qp + n * Hq * d, kp + n * Hkv * d,
             vp + n * Hkv * d, w, ll, lg, op + n * Hq * d);
    }
  });
  for (AugState* s : states) ++s->pos;
  return out;
}

void aug_absorb(AugState& s, const Tensor& kk, const Tensor& v) {
  ops::detail::check_float(kk, "aug_absorb", "k");
  LINSPEC_CHECK(kk.dim() == 4 && kk.shape() == v.shape() && kk.size(0) == s.batch && kk.size(1) == s.kv_heads &&
                    kk.size(3) == s.head_dim && kk.dtype() == s.dtype && v.dtype() == s.dtype,
                "aug_absorb: k / v must be [", s.batch, ", ", s.kv_heads, ", T, ", s.head_dim, "] ",
                dtype_name(s.dtype), ", got ", shape_str(kk.shape()), " / ", shape_str(v.shape()));
  absorb_tokens(s, kk, v);
}

std::vector<int32_t> tree_depths(const std::vector<int32_t>& parent) {
  std::vector<int32_t> depth(parent.size());
  for (size_t i = 0; i < parent.size(); ++i) {
    LINSPEC_CHECK(parent[i] >= -1 && parent[i] < static_cast<int32_t>(i), "tree: parent[", i, "] = ", parent[i],
                  " must be -1 or an earlier node");
    depth[i] = parent[i] < 0 ? 0 : depth[parent[i]] + 1;
  }
  return depth;
}

Tensor aug_tree(const AugState& s, const Tensor& q, const Tensor& kk, const Tensor& v,
                const std::vector<int32_t>& parent, const Tensor& conv_w, const Tensor& lambda_local,
                const Tensor& lambda_global) {
  check_qkv(q, kk, v, 4, "aug_tree");
  check_matches_state(s, q, kk, "aug_tree");
  const int64_t N = q.size(2);
  LINSPEC_CHECK(static_cast<int64_t>(parent.size()) == N, "aug_tree: ", parent.size(), " parents for ", N, " nodes");
  const std::vector<int32_t> depth = tree_depths(parent);  // validates the parent array
  const int32_t deepest = depth.empty() ? 0 : *std::max_element(depth.begin(), depth.end());
  LINSPEC_CHECK(deepest < kernels::kMaxTreePath, "aug_tree: a path of ", deepest + 1, " nodes (at most ",
                kernels::kMaxTreePath, ")");
  Tensor out = Tensor::empty(q.shape(), s.dtype, q.device());
  if (N == 0) return out;
  const KernelOperands o = kernel_operands(s, q, kk, v, conv_w, lambda_local, lambda_global);
  const Tensor parents = Tensor::from_vector(parent, {N}).to(q.device());  // the kernel reads them where it runs
  ops::detail::dispatch_float(s.dtype, "aug_tree", [&](auto t) {
    using T = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T>(o.qhat).aug.tree_forward, "aug_tree_forward", o.qhat)(
        state_dims(s, N), branches(s.cfg), ref<T>(s), parents.device_data<int32_t>(), o.qhat.device_data<T>(),
        o.khat.device_data<T>(), o.v.device_data<T>(), data_or_null<T>(o.conv_w), data_or_null<T>(o.lambda_local),
        data_or_null<T>(o.lambda_global), out.device_data<T>());
  });
  return out;
}

void aug_advance(AugState& s, const Tensor& kk, const Tensor& v, const std::vector<int32_t>& parent,
                 const std::vector<int32_t>& accepted) {
  LINSPEC_CHECK(kk.dim() == 4 && kk.shape() == v.shape() && kk.size(2) == static_cast<int64_t>(parent.size()),
                "aug_advance: k / v must be [B, Hkv, N, d] for the ", parent.size(), " tree nodes, got ",
                shape_str(kk.shape()));
  tree_depths(parent);
  for (size_t i = 0; i < accepted.size(); ++i) {
    const int32_t node = accepted[i];
    LINSPEC_CHECK(node >= 0 && node < static_cast<int32_t>(parent.size()), "aug_advance: node ", node,
                  " is not in the tree");
    const int32_t expected = i == 0 ? -1 : accepted[i - 1];
    LINSPEC_CHECK(parent[node] == expected, "aug_advance: accepted nodes must form a root-first path; node ", node,
                  " has parent ", parent[node], ", expected ", expected);
  }
  // The accepted nodes' k / v in path order, absorbed; nothing else touches the state.
  aug_absorb(s, gather_rows(kk, accepted), gather_rows(v, accepted));
}

}  // namespace linspec
