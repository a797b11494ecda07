// silu and swiglu (the LLaMA MLP gate): forward and backward; the inputs are kept for backward.
#include "core/ops/dispatch.h"

namespace linspec::ops {

Tensor silu(const Tensor& x_in) {
  detail::check_float(x_in, "silu", "x");
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  detail::dispatch_float(x.dtype(), "silu", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(x).activation.silu_forward, "silu_forward", x)(
        x.device_data<T>(), out.device_data<T>(), x.numel());
  });
  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in, x](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
      detail::dispatch_float(x.dtype(), "silu backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(x).activation.silu_backward, "silu_backward", x)(
            x.device_data<T>(), g.device_data<T>(), gx.device_data<T>(), x.numel());
      });
      accumulate_grad(x_in, gx);
    });
  }
  return out;
}

Tensor swiglu(const Tensor& gate_in, const Tensor& up_in) {
  detail::check_float(gate_in, "swiglu", "gate");
  detail::check_float(up_in, "swiglu", "up");
  detail::check_same_dtype(gate_in, up_in, "swiglu");
  detail::backend_of("swiglu", {&gate_in, &up_in});
  LINSPEC_CHECK(gate_in.shape() == up_in.shape(), "swiglu: gate ", shape_str(gate_in.shape()), " and up ",
                shape_str(up_in.shape()), " differ");
  Tensor gate = gate_in.contiguous(), up = up_in.contiguous();
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
  detail::dispatch_float(gate.dtype(), "swiglu", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(gate).activation.swiglu_forward, "swiglu_forward", gate)(
        gate.device_data<T>(), up.device_data<T>(), out.device_data<T>(), gate.numel());
  });
  if (any_requires_grad({&gate_in, &up_in})) {
    record_op(out, [gate_in, up_in, gate, up](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor gg = gate_in.requires_grad() ? Tensor::empty(gate.shape(), gate.dtype(), gate.device()) : Tensor();
      Tensor gu = up_in.requires_grad() ? Tensor::empty(up.shape(), up.dtype(), up.device()) : Tensor();
      detail::dispatch_float(gate.dtype(), "swiglu backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(gate).activation.swiglu_backward, "swiglu_backward", gate)(
            gate.device_data<T>(), up.device_data<T>(), g.device_data<T>(),
            gg.defined() ? gg.device_data<T>() : nullptr, gu.defined() ? gu.device_data<T>() : nullptr, gate.numel());
      });
      accumulate_grad(gate_in, gg);
      accumulate_grad(up_in, gu);
    });
  }
  return out;
}

}  // namespace linspec::ops
