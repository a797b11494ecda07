// Parallel (training) form of the baseline linear attentions: feature map → chunked hybrid attention (→ RMSNorm for
// transnormer), or yoso's local groups. Each stage is one taped op with its backward next to its forward, so the
// gradients of q, k, v and every learnable parameter flow through the ordinary autograd tape.
#include "attention/baselines/baseline_support.h"

namespace linspec {
namespace {
namespace ks = baseline_attention_support;
namespace ka = kernels::baseline_attn;
using ops::detail::dispatch_float;

// φ(x) for x [B, Hin, T, d] -> [B, Hq, T, F]; differentiable in x and (hedgehog) feature_w / feature_b.
Tensor feature_op(const BaselineAttentionConfig& c, const BaselineAttentionParams& params, const ks::ParamsIn& pin,
                  const Tensor& x_in, int64_t Hq, const std::vector<int64_t>& pos, bool query_side) {
  Tensor x = x_in.contiguous();
  Tensor f = ks::features(c, pin, x, Hq, pos, query_side);
  const Tensor& w = params.feature_w;
  const Tensor& b = params.feature_b;
  const bool hedgehog = ks::uses_hedgehog(c);
  if (any_requires_grad({&x_in}) || (hedgehog && any_requires_grad({&w, &b}))) {
    record_op(f, [c, pin, x, x_in, w, b, Hq, pos, query_side, hedgehog](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      const int64_t B = x.size(0), Hin = x.size(1), T = x.size(2), d = x.size(3);
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      Tensor dw = hedgehog && w.requires_grad() ? Tensor::zeros(w.shape(), x.dtype(), x.device()) : Tensor();
      Tensor db = hedgehog && b.requires_grad() ? Tensor::zeros(b.shape(), x.dtype(), x.device()) : Tensor();
      dispatch_float(x.dtype(), "kernel attention feature backward", [&](auto t) {
        using T_ = decltype(t);
        ops::detail::kernel(ops::detail::float_kernels<T_>(x).baseline_attn.feature_backward, "feature_backward", x)(
            ks::feature_spec<T_>(c, pin, d, query_side), B, Hin, Hq, T, x.device_data<T_>(), pos.data(),
            g.device_data<T_>(), dx.device_data<T_>(), dw.defined() ? dw.device_data<T_>() : nullptr,
            db.defined() ? db.device_data<T_>() : nullptr);
      });
      accumulate_grad(x_in, dx);
      if (dw.defined()) accumulate_grad(w, dw);
      if (db.defined()) accumulate_grad(b, db);
    });
  }
  return f;
}

// The chunked hybrid attention on features; q, k and mix_logit take part only with a window.
Tensor hybrid_op(const ka::HybridDims& dm, const Tensor& fq, const Tensor& fk, const Tensor& v_in, const Tensor& q_in,
                 const Tensor& k_in, const Tensor& mix) {
  const bool window = dm.window > 0;
  Tensor v = v_in.contiguous();
  Tensor q = window ? q_in.contiguous() : Tensor();
  Tensor k = window ? k_in.contiguous() : Tensor();
  Tensor mixc = window ? mix.contiguous() : Tensor();
  Tensor out = Tensor::empty({dm.batch, dm.q_heads, dm.seq, dm.head_dim}, v.dtype(), v.device());
  // Raw pointers of the (contiguous) inputs; the backward re-derives them from the tensors it keeps alive.
  auto inputs = [](auto t, const Tensor& fq, const Tensor& fk, const Tensor& v, const Tensor& q, const Tensor& k,
                   const Tensor& mix) {
    using T_ = decltype(t);
    ka::HybridInputs<T_> in;
    in.fq = fq.device_data<T_>(), in.fk = fk.device_data<T_>(), in.v = v.device_data<T_>();
    if (q.defined()) in.q = q.device_data<T_>(), in.k = k.device_data<T_>(), in.mix_logit = mix.device_data<T_>();
    return in;
  };
  dispatch_float(v.dtype(), "kernel attention", [&](auto t) {
    using T_ = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T_>(out).baseline_attn.hybrid_forward, "hybrid_forward", out)(
        dm, inputs(t, fq, fk, v, q, k, mixc), out.device_data<T_>());
  });
  const bool need = any_requires_grad({&fq, &fk, &v_in}) || (window && any_requires_grad({&q_in, &k_in, &mix}));
  if (need) {
    record_op(out, [dm, window, fq, fk, v, q, k, mixc, v_in, q_in, k_in, mix, inputs](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dfq = Tensor::empty(fq.shape(), v.dtype(), v.device()),
             dfk = Tensor::empty(fk.shape(), v.dtype(), v.device());
      Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
      Tensor dq = window ? Tensor::empty(q.shape(), v.dtype(), v.device()) : Tensor();
      Tensor dk = window ? Tensor::empty(k.shape(), v.dtype(), v.device()) : Tensor();
      Tensor dmix = window ? Tensor::empty(mixc.shape(), v.dtype(), v.device()) : Tensor();
      dispatch_float(v.dtype(), "kernel attention backward", [&](auto t) {
        using T_ = decltype(t);
        auto ptr = [](Tensor& x) { return x.defined() ? x.device_data<T_>() : nullptr; };
        ops::detail::kernel(ops::detail::float_kernels<T_>(g).baseline_attn.hybrid_backward, "hybrid_backward", g)(
            dm, inputs(t, fq, fk, v, q, k, mixc), g.device_data<T_>(), dfq.device_data<T_>(), dfk.device_data<T_>(),
            dv.device_data<T_>(), ptr(dq), ptr(dk), ptr(dmix));
      });
      accumulate_grad(fq, dfq);
      accumulate_grad(fk, dfk);
      accumulate_grad(v_in, dv);
      if (window) {
        accumulate_grad(q_in, dq);
        accumulate_grad(k_in, dk);
        accumulate_grad(mix, dmix);
      }
    });
  }
  return out;
}

// RMSNorm over d per head, optional weight [Hq, d].
Tensor rms_norm_op(const Tensor& x_in, const Tensor& w_in, double eps) {
  Tensor x = x_in.contiguous();
  Tensor w = w_in.defined() ? w_in.contiguous() : Tensor();
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), d = x.size(3);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_float(x.dtype(), "kernel attention rmsnorm", [&](auto t) {
    using T_ = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T_>(x).baseline_attn.rms_norm_heads, "rms_norm_heads", x)(
        x.device_data<T_>(), w.defined() ? w.device_data<T_>() : nullptr, y.device_data<T_>(), B, H, T, d,
        static_cast<T_>(eps));
  });
  if (any_requires_grad({&x_in, &w_in})) {
    record_op(y, [x, w, x_in, w_in, eps, B, H, T, d](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      Tensor dw = w.defined() && w_in.requires_grad() ? Tensor::zeros(w.shape(), x.dtype(), x.device()) : Tensor();
      dispatch_float(x.dtype(), "kernel attention rmsnorm backward", [&](auto t) {
        using T_ = decltype(t);
        ops::detail::kernel(ops::detail::float_kernels<T_>(x).baseline_attn.rms_norm_heads_backward,
                            "rms_norm_heads_backward", x)(
            x.device_data<T_>(), w.defined() ? w.device_data<T_>() : nullptr, g.device_data<T_>(), dx.device_data<T_>(),
            dw.defined() ? dw.device_data<T_>() : nullptr, B, H, T, d, static_cast<T_>(eps));
      });
      accumulate_grad(x_in, dx);
      if (dw.defined()) accumulate_grad(w_in, dw);
    });
  }
  return y;
}

// yoso on raw q, k (normalised inside, so the op is differentiable in q, k, v directly).
Tensor yoso_op(const ka::LocalDims& dm, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t d = dm.head_dim;
  Tensor qh = Tensor::empty(q.shape(), q.dtype(), q.device()), kh = Tensor::empty(k.shape(), k.dtype(), k.device());
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  dispatch_float(q.dtype(), "yoso attention", [&](auto t) {
    using T_ = decltype(t);
    const T_ eps = static_cast<T_>(ks::kL2Eps);
    ops::detail::kernel(ops::detail::float_kernels<T_>(q).baseline_attn.l2_normalize, "l2_normalize", q)(
        q.device_data<T_>(), qh.device_data<T_>(), q.numel() / d, d, eps);
    ops::detail::kernel(ops::detail::float_kernels<T_>(k).baseline_attn.l2_normalize, "l2_normalize", k)(
        k.device_data<T_>(), kh.device_data<T_>(), k.numel() / d, d, eps);
    ops::detail::kernel(ops::detail::float_kernels<T_>(qh).baseline_attn.yoso_forward, "yoso_forward", qh)(
        dm, qh.device_data<T_>(), kh.device_data<T_>(), v.device_data<T_>(), out.device_data<T_>());
  });
  if (any_requires_grad({&q_in, &k_in, &v_in})) {
    record_op(out, [dm, q, k, v, qh, kh, q_in, k_in, v_in](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      const int64_t d = dm.head_dim;
      Tensor dqh = Tensor::empty(q.shape(), q.dtype(), q.device()),
             dkh = Tensor::empty(k.shape(), k.dtype(), k.device());
      Tensor dq = Tensor::empty(q.shape(), q.dtype(), q.device()), dk = Tensor::empty(k.shape(), k.dtype(), k.device());
      Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
      dispatch_float(q.dtype(), "yoso attention backward", [&](auto t) {
        using T_ = decltype(t);
        const T_ eps = static_cast<T_>(ks::kL2Eps);
        ops::detail::kernel(ops::detail::float_kernels<T_>(qh).baseline_attn.yoso_backward, "yoso_backward", qh)(
            dm, qh.device_data<T_>(), kh.device_data<T_>(), v.device_data<T_>(), g.device_data<T_>(),
            dqh.device_data<T_>(), dkh.device_data<T_>(), dv.device_data<T_>());
        ops::detail::kernel(ops::detail::float_kernels<T_>(q).baseline_attn.l2_normalize_backward,
                            "l2_normalize_backward",
                            q)(q.device_data<T_>(), dqh.device_data<T_>(), dq.device_data<T_>(), q.numel() / d, d, eps);
        ops::detail::kernel(ops::detail::float_kernels<T_>(k).baseline_attn.l2_normalize_backward,
                            "l2_normalize_backward",
                            k)(k.device_data<T_>(), dkh.device_data<T_>(), dk.device_data<T_>(), k.numel() / d, d, eps);
      });
      accumulate_grad(q_in, dq);
      accumulate_grad(k_in, dk);
      accumulate_grad(v_in, dv);
    });
  }
  return out;
}

}  // namespace

Tensor baseline_attention(const BaselineAttentionConfig& c, const BaselineAttentionParams& params, const Tensor& q,
                        const Tensor& k, const Tensor& v) {
  const ks::Sizes s = ks::check_qkv(q, k, v, "baseline_attention");
  c.validate();
  ops::detail::backend_of("baseline_attention", {&q, &k, &v, &params.omega, &params.feature_w, &params.feature_b,
                                               &params.mix_logit, &params.norm_weight});
  if (c.preset == BaselinePreset::Yoso) return yoso_op(ks::local_dims(c, s), q, k, v);
  const ks::ParamsIn pin = ks::params_in(c, params, s.q_heads, s.head_dim, q.dtype());
  const std::vector<int64_t> pos = ks::positions(0, s.len);
  Tensor fq = feature_op(c, params, pin, q, s.q_heads, pos, /*query_side=*/true);
  Tensor fk = feature_op(c, params, pin, k, s.q_heads, pos, /*query_side=*/false);
  Tensor o = hybrid_op(ks::hybrid_dims(c, s), fq, fk, v, q, k, params.mix_logit);
  if (c.preset == BaselinePreset::Transnormer)
    o = rms_norm_op(o, pin.norm_w.defined() ? params.norm_weight : Tensor(), c.norm_eps);
  return o;
}

}  // namespace linspec
