// ops::aug_attention: the chunked parallel form of the augmented linear attention, forward and backward together
// (kernels in kernels/cpu/aug_attention.cpp). The L2 normalisation of q and k happens inside the kernels, group by
// group, so the backward keeps only the inputs and the per-kv-head group states of the global term.
#include "attention/aug/aug_support.h"

namespace linspec::ops {
namespace {
namespace k = kernels;
using namespace aug_support;

// Contiguous inputs in one dtype, the global term's group states and the kernel shape; the backward keeps these.
struct Prepared {
  Tensor q, k, v, w;  // w undefined when the conv branch is off
  Tensor states;      // [B, Hkv, groups, d, d], undefined when the global branch is off
  k::AugDims dm;
};

Prepared prepare(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& conv_w,
                 const AugConfig& cfg) {
  cfg.validate();
  check_qkv(q_in, k_in, v_in, 4, "aug_attention");
  Prepared p{q_in.contiguous(), k_in.contiguous(),
             v_in.contiguous(), conv_weights(cfg, conv_w, q_in.size(1), q_in.dtype()),
             Tensor(),          {}};
  p.dm = dims(cfg, q_in.size(0), q_in.size(1), k_in.size(1), q_in.size(2), q_in.size(3));
  if (cfg.use_global) {
    const int64_t d = p.dm.head_dim;
    p.states = Tensor::empty({p.dm.batch, p.dm.kv_heads, p.dm.groups(), d, d}, p.q.dtype(), p.q.device());
    detail::dispatch_float(p.q.dtype(), "aug_attention states", [&](auto t) {
      using T = decltype(t);
      detail::kernel(detail::float_kernels<T>(p.k).aug.group_states, "aug_group_states", p.k)(
          p.dm, p.k.device_data<T>(), p.v.device_data<T>(), p.states.device_data<T>());
    });
  }
  return p;
}

void backward(const Prepared& p, const AugConfig& cfg, const Tensor& ll, const Tensor& lg, const Tensor& g_in, const Tensor& q_in,
              const Tensor& k_in, const Tensor& v_in, const Tensor& w_in, const Tensor& ll_in, const Tensor& lg_in) {
  Tensor g = g_in.contiguous();
  const DType dt = p.q.dtype();
  const Device dev = p.q.device();
  Tensor dq = Tensor::empty(p.q.shape(), dt, dev), dk = Tensor::empty(p.k.shape(), dt, dev);
  Tensor dv = Tensor::empty(p.v.shape(), dt, dev);
  Tensor dw = p.w.defined() ? Tensor::empty(p.w.shape(), dt, dev) : Tensor();
  // The λ gradients stay on the device (one element each), like every other gradient.
  Tensor dll = Tensor::empty({}, dt, dev), dlg = Tensor::empty({}, dt, dev);
  detail::dispatch_float(dt, "aug_attention backward", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(p.q).aug.backward, "aug_backward", p.q)(
        p.dm, branches(cfg), p.q.device_data<T>(), p.k.device_data<T>(), p.v.device_data<T>(), data_or_null<T>(p.states),
        data_or_null<T>(p.w), data_or_null<T>(ll), data_or_null<T>(lg), g.device_data<T>(), dq.device_data<T>(),
        dk.device_data<T>(), dv.device_data<T>(), dw.defined() ? dw.device_data<T>() : nullptr, dll.device_data<T>(),
        dlg.device_data<T>());
  });
  accumulate_grad(q_in, dq);
  accumulate_grad(k_in, dk);
  accumulate_grad(v_in, dv);
  if (dw.defined()) accumulate_grad(w_in, dw);
  if (ll_in.defined()) accumulate_grad(ll_in, dll.view(ll_in.shape()));
  if (lg_in.defined()) accumulate_grad(lg_in, dlg.view(lg_in.shape()));
}
}  // namespace

Tensor aug_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& conv_w,
                     const Tensor& lambda_local, const Tensor& lambda_global, const AugConfig& cfg) {
  Prepared p = prepare(q_in, k_in, v_in, conv_w, cfg);
  const Tensor ll = lambda_operand(lambda_local, "lambda_local", p.q);
  const Tensor lg = lambda_operand(lambda_global, "lambda_global", p.q);
  Tensor out = Tensor::empty(p.q.shape(), p.q.dtype(), p.q.device());
  detail::dispatch_float(p.q.dtype(), "aug_attention", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(p.q).aug.forward, "aug_forward", p.q)(
        p.dm, branches(cfg), p.q.device_data<T>(), p.k.device_data<T>(), p.v.device_data<T>(), data_or_null<T>(p.states),
        data_or_null<T>(p.w), data_or_null<T>(ll), data_or_null<T>(lg), out.device_data<T>(), nullptr, nullptr, nullptr);
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
  const Device dev = p.q.device();
  AugBranchOutputs r{Tensor::zeros(shape, dt, dev), Tensor::zeros(shape, dt, dev), Tensor::zeros(shape, dt, dev)};
  Tensor out = Tensor::empty(shape, dt, dev);
  detail::dispatch_float(dt, "aug_attention_branches", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(p.q).aug.forward, "aug_forward", p.q)(
        p.dm, branches(cfg), p.q.device_data<T>(), p.k.device_data<T>(), p.v.device_data<T>(), data_or_null<T>(p.states),
        data_or_null<T>(p.w), nullptr, nullptr, out.device_data<T>(), r.local.device_data<T>(), r.global.device_data<T>(),
        r.conv.device_data<T>());
  });
  return r;
}

}  // namespace linspec::ops
