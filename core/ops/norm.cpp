// rmsnorm (HF LlamaRMSNorm) over the last dim; the per-row rstd is kept for the backward pass.
#include "core/ops/dispatch.h"

namespace linspec::ops {

Tensor rmsnorm(const Tensor& x_in, const Tensor& weight_in, double eps) {
  detail::check_float(x_in, "rmsnorm", "x");
  detail::check_float(weight_in, "rmsnorm", "weight");
  detail::check_same_dtype(x_in, weight_in, "rmsnorm");
  detail::backend_of("rmsnorm", {&x_in, &weight_in});
  LINSPEC_CHECK(x_in.dim() >= 1 && weight_in.dim() == 1 && weight_in.size(0) == x_in.size(-1), "rmsnorm: weight ",
                shape_str(weight_in.shape()), " does not match the last dim of x ", shape_str(x_in.shape()));
  Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  const int64_t d = x.size(-1), rows = d == 0 ? 0 : x.numel() / d;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, x.dtype(), x.device());
  detail::dispatch_float(x.dtype(), "rmsnorm", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(x).norm.rmsnorm_forward, "rmsnorm_forward", x)(
        x.device_data<T>(), weight.device_data<T>(), static_cast<T>(eps), out.device_data<T>(), rstd.device_data<T>(),
        rows, d);
  });

  if (any_requires_grad({&x_in, &weight_in})) {
    record_op(out, [x_in, weight_in, x, weight, rstd, rows, d](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor gx = x_in.requires_grad() ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor();
      Tensor gw = weight_in.requires_grad() ? Tensor::empty(weight.shape(), x.dtype(), x.device()) : Tensor();
      detail::dispatch_float(x.dtype(), "rmsnorm backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(x).norm.rmsnorm_backward, "rmsnorm_backward", x)(
            x.device_data<T>(), weight.device_data<T>(), rstd.device_data<T>(), g.device_data<T>(),
            gx.defined() ? gx.device_data<T>() : nullptr, gw.defined() ? gw.device_data<T>() : nullptr, rows, d);
      });
      accumulate_grad(x_in, gx);
      accumulate_grad(weight_in, gw);
    });
  }
  return out;
}

}  // namespace linspec::ops
