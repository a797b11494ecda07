// ops::aug_attention: the chunked parallel form of the augmented linear attention, forward and backward together
// (kernels in kernels/cpu/linear_attention.cpp). The L2 normalisation of q and k happens inside the kernels, group by
// group, so the backward keeps only the inputs and the per-kv-head group states of the global term.
#include "core/ops/linear_attention_support.h"

namespace linspec::ops {
namespace {
namespace k = kernels::cpu;
using namespace aug_support;

// Contiguous inputs in one dtype, the global term's group states and the kernel shape; the backward keeps these.
struct Prepared {
  Tensor q, k, v, w;  // w undefined when the conv branch is off
  Tensor states;      // [B, Hkv, groups, d, d], undefined when the global branch is off
  k::AugDims dm;
};

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

Prepared prepare(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& conv_w,
                 const AugConfig& cfg) {
  cfg.validate();
  check_qkv(q_in, k_in, v_in, 4, "aug_attention");
  Prepared p{q_in.contiguous(), k_in.contiguous(), v_in.contiguous(),
             conv_weights(cfg, conv_w, q_in.size(1), q_in.dtype()), Tensor(), {}};
  p.dm = dims(cfg, q_in.size(0), q_in.size(1), k_in.size(1), q_in.size(2), q_in.size(3));
  if (cfg.use_global) {
    const int64_t d = p.dm.head_dim;
    p.states = Tensor::empty({p.dm.batch, p.dm.kv_heads, p.dm.groups(), d, d}, p.q.dtype());
    detail::dispatch_float(p.q.dtype(), "aug_attention states", [&](auto t) {
      using T = decltype(t);
      k::aug_group_states<T>(p.dm, p.k.data<T>(), p.v.data<T>(), p.states.data<T>());
    });
  }
  return p;
}

void backward(const Prepared& p, const AugConfig& cfg, double ll, double lg, const Tensor& g_in, const Tensor& q_in,
              const Tensor& k_in, const Tensor& v_in, const Tensor& w_in, const Tensor& ll_in, const Tensor& lg_in) {
  Tensor g = g_in.contiguous();
  const DType dt = p.q.dtype();
  Tensor dq = Tensor::empty(p.q.shape(), dt), dk = Tensor::empty(p.k.shape(), dt), dv = Tensor::empty(p.v.shape(), dt);
  Tensor dw = p.w.defined() ? Tensor::empty(p.w.shape(), dt) : Tensor();
  double dll = 0, dlg = 0;
  detail::dispatch_float(dt, "aug_attention backward", [&](auto t) {
    using T = decltype(t);
    T sl = 0, sg = 0;
    k::aug_backward<T>(p.dm, branches(cfg), p.q.data<T>(), p.k.data<T>(), p.v.data<T>(), ptr_or_null<T>(p.states),
                       ptr_or_null<T>(p.w),
                       static_cast<T>(ll), static_cast<T>(lg), g.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(),
                       dw.defined() ? dw.data<T>() : nullptr, &sl, &sg);
    dll = sl, dlg = sg;
  });
  accumulate_grad(q_in, dq);
  accumulate_grad(k_in, dk);
  accumulate_grad(v_in, dv);
  if (dw.defined()) accumulate_grad(w_in, dw);
  if (ll_in.defined()) accumulate_grad(ll_in, Tensor::full(ll_in.shape(), dll, ll_in.dtype()));
  if (lg_in.defined()) accumulate_grad(lg_in, Tensor::full(lg_in.shape(), dlg, lg_in.dtype()));
}
}  // namespace

Tensor aug_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& conv_w,
                     const Tensor& lambda_local, const Tensor& lambda_global, const AugConfig& cfg) {
  Prepared p = prepare(q_in, k_in, v_in, conv_w, cfg);
  const double ll = lambda_value(lambda_local, "lambda_local"), lg = lambda_value(lambda_global, "lambda_global");
  Tensor out = Tensor::empty(p.q.shape(), p.q.dtype());
  detail::dispatch_float(p.q.dtype(), "aug_attention", [&](auto t) {
    using T = decltype(t);
    k::aug_forward<T>(p.dm, branches(cfg), p.q.data<T>(), p.k.data<T>(), p.v.data<T>(), ptr_or_null<T>(p.states),
                      ptr_or_null<T>(p.w), static_cast<T>(ll), static_cast<T>(lg), out.data<T>());
  });
  const Tensor w_in = cfg.use_conv ? conv_w : Tensor();
  if (any_requires_grad({&q_in, &k_in, &v_in, &w_in, &lambda_local, &lambda_global})) {
    // Saved: the (contiguous) inputs and the group states; q̂, k̂ and the G×G scores are recomputed per group.
    auto detached = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
    Prepared saved{detached(p.q), detached(p.k), detached(p.v), detached(p.w), p.states, p.dm};
    record_op(out, [saved, cfg, ll, lg, q_in, k_in, v_in, w_in, lambda_local, lambda_global](const Tensor& g) {
      backward(saved, cfg, ll, lg, g, q_in, k_in, v_in, w_in, lambda_local, lambda_global);
    });
  }
  return out;
}

AugBranchOutputs aug_attention_branches(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& conv_w,
                                        const AugConfig& cfg) {
  Prepared p = prepare(q, k, v, conv_w, cfg);
  const Shape& shape = p.q.shape();
  const DType dt = p.q.dtype();
  AugBranchOutputs r{Tensor::zeros(shape, dt), Tensor::zeros(shape, dt), Tensor::zeros(shape, dt)};
  Tensor out = Tensor::empty(shape, dt);
  detail::dispatch_float(dt, "aug_attention_branches", [&](auto t) {
    using T = decltype(t);
    k::aug_forward<T>(p.dm, branches(cfg), p.q.data<T>(), p.k.data<T>(), p.v.data<T>(), ptr_or_null<T>(p.states),
                      ptr_or_null<T>(p.w), T(1), T(1), out.data<T>(), r.local.data<T>(), r.global.data<T>(),
                      r.conv.data<T>());
  });
  return r;
}

}  // namespace linspec::ops
