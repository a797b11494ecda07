// rope: HF rotate-half rotary embedding on [B, H, T, d]; the backward is the inverse rotation.
#include "core/ops/dispatch.h"
#include "kernels/rope.h"

namespace linspec::ops {

Tensor rope(const Tensor& x_in, double theta, int64_t pos0, const std::vector<float>& inv_freq) {
  detail::check_cpu_float(x_in, "rope", "x");
  LINSPEC_CHECK(x_in.dim() == 4, "rope: x must be [B, H, T, d], got ", shape_str(x_in.shape()));
  const int64_t d = x_in.size(3), half = d / 2, steps = x_in.size(2), bh = x_in.size(0) * x_in.size(1);
  LINSPEC_CHECK(d % 2 == 0, "rope: head dim ", d, " must be even");
  LINSPEC_CHECK(inv_freq.empty() || static_cast<int64_t>(inv_freq.size()) == half, "rope: inv_freq has ",
                inv_freq.size(), " values, head dim ", d, " needs ", half);
  LINSPEC_CHECK(pos0 >= 0, "rope: negative start position ", pos0);
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  // The tables are tiny next to x ([T, d/2]); the backward reuses them.
  Tensor cos_t = Tensor::empty({steps, half}, x.dtype()), sin_t = Tensor::empty({steps, half}, x.dtype());
  detail::dispatch_float(x.dtype(), "rope", [&](auto t) {
    using T = decltype(t);
    std::vector<T> freq(half);
    if (inv_freq.empty()) kernels::cpu::rope_default_inv_freq(theta, d, freq.data());
    else std::copy(inv_freq.begin(), inv_freq.end(), freq.begin());
    kernels::cpu::rope_tables(freq.data(), half, pos0, steps, cos_t.data<T>(), sin_t.data<T>());
    kernels::cpu::rope_apply(x.data<T>(), cos_t.data<T>(), sin_t.data<T>(), out.data<T>(), bh, steps, d, false);
  });

  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in, cos_t, sin_t, bh, steps, d](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(g.shape(), g.dtype());
      detail::dispatch_float(g.dtype(), "rope backward", [&](auto t) {
        using T = decltype(t);
        kernels::cpu::rope_apply(g.data<T>(), cos_t.data<T>(), sin_t.data<T>(), gx.data<T>(), bh, steps, d, true);
      });
      accumulate_grad(x_in, gx);
    });
  }
  return out;
}

}  // namespace linspec::ops
