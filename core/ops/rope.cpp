// rope: HF rotate-half rotary embedding on [B, H, T, d]; the backward is the inverse rotation.
#include <algorithm>
#include <vector>

#include "core/ops/dispatch.h"

namespace linspec::ops {

Tensor rope(const Tensor& x_in, double theta, int64_t pos0, const std::vector<float>& inv_freq) {
  detail::check_float(x_in, "rope", "x");
  LINSPEC_CHECK(x_in.dim() == 4, "rope: x must be [B, H, T, d], got ", shape_str(x_in.shape()));
  const int64_t d = x_in.size(3), half = d / 2;
  LINSPEC_CHECK(d % 2 == 0, "rope: head dim ", d, " must be even");
  LINSPEC_CHECK(inv_freq.empty() || static_cast<int64_t>(inv_freq.size()) == half, "rope: inv_freq has ",
                inv_freq.size(), " values, head dim ", d, " needs ", half);
  Tensor freq = Tensor::empty({half}, x_in.dtype(), x_in.device());
  if (inv_freq.empty()) {
    detail::dispatch_float(x_in.dtype(), "rope", [&](auto t) {
      using T = decltype(t);
      detail::kernel(detail::float_kernels<T>(x_in).rope.default_inv_freq, "rope_default_inv_freq", x_in)(
          theta, d, freq.device_data<T>());
    });
  } else {
    freq.copy_from(Tensor::from_vector(inv_freq, {half}));
  }
  return rope(x_in, pos0, freq);
}

Tensor rope(const Tensor& x_in, int64_t pos0, const Tensor& freq_in) {
  detail::check_float(x_in, "rope", "x");
  detail::backend_of("rope", {&x_in, &freq_in});
  LINSPEC_CHECK(x_in.dim() == 4, "rope: x must be [B, H, T, d], got ", shape_str(x_in.shape()));
  const int64_t d = x_in.size(3), half = d / 2, steps = x_in.size(2), bh = x_in.size(0) * x_in.size(1);
  LINSPEC_CHECK(d % 2 == 0, "rope: head dim ", d, " must be even");
  LINSPEC_CHECK(freq_in.numel() == half, "rope: inv_freq has ", freq_in.numel(), " values, head dim ", d, " needs ",
                half);
  LINSPEC_CHECK(pos0 >= 0, "rope: negative start position ", pos0);
  Tensor x = x_in.contiguous(), freq = freq_in.to(x.dtype()).contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  // The tables are tiny next to x ([T, d/2]); the backward reuses them.
  Tensor cos_t = Tensor::empty({steps, half}, x.dtype(), x.device());
  Tensor sin_t = Tensor::empty({steps, half}, x.dtype(), x.device());
  detail::dispatch_float(x.dtype(), "rope", [&](auto t) {
    using T = decltype(t);
    const auto& k = detail::float_kernels<T>(x).rope;
    detail::kernel(k.tables, "rope_tables", x)(freq.device_data<T>(), half, pos0, steps, cos_t.device_data<T>(),
                                               sin_t.device_data<T>());
    detail::kernel(k.apply, "rope_apply", x)(x.device_data<T>(), cos_t.device_data<T>(), sin_t.device_data<T>(),
                                             out.device_data<T>(), bh, steps, d, false);
  });

  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in, cos_t, sin_t, bh, steps, d](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
      detail::dispatch_float(g.dtype(), "rope backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(g).rope.apply, "rope_apply", g)(
            g.device_data<T>(), cos_t.device_data<T>(), sin_t.device_data<T>(), gx.device_data<T>(), bh, steps, d,
            true);
      });
      accumulate_grad(x_in, gx);
    });
  }
  return out;
}

RopeRows rope_rows_at_positions(const std::vector<int64_t>& positions, const Tensor& freq_in, DType dtype) {
  const int64_t half = freq_in.numel(), n = static_cast<int64_t>(positions.size());
  LINSPEC_CHECK(half > 0 && n > 0, "rope_rows_at_positions: ", n, " positions, ", half, " frequencies");
  const auto [lo_it, hi_it] = std::minmax_element(positions.begin(), positions.end());
  const int64_t lo = *lo_it, span = *hi_it - lo + 1;
  LINSPEC_CHECK(lo >= 0, "rope_at_positions: negative position ", lo);
  std::vector<int32_t> rows(positions.size());
  for (size_t i = 0; i < positions.size(); ++i) rows[i] = static_cast<int32_t>(positions[i] - lo);
  const Tensor freq = freq_in.to(dtype).contiguous();
  const Tensor row_ids = Tensor::from_vector(rows, {n}).to(freq.device());
  Tensor cos_span = Tensor::empty({span, half}, dtype, freq.device());
  Tensor sin_span = Tensor::empty({span, half}, dtype, freq.device());
  RopeRows out;
  detail::dispatch_float(dtype, "rope_rows_at_positions", [&](auto t) {
    using T = decltype(t);
    const auto& k = detail::float_kernels<T>(freq).rope;
    // The angle of position p is T(p) · inv_freq[i] whatever the table's start: the same bits as ops::rope.
    detail::kernel(k.tables, "rope_tables", freq)(freq.device_data<T>(), half, lo, span, cos_span.device_data<T>(),
                                                  sin_span.device_data<T>());
    out.cos = embedding(cos_span, row_ids).contiguous(), out.sin = embedding(sin_span, row_ids).contiguous();
  });
  return out;
}

Tensor rope_with_rows(const Tensor& x_in, const RopeRows& r) {
  detail::check_float(x_in, "rope_at_positions", "x");
  detail::backend_of("rope_at_positions", {&x_in, &r.cos, &r.sin});
  LINSPEC_CHECK(!any_requires_grad({&x_in}), "rope_at_positions: forward only (inference)");
  LINSPEC_CHECK(x_in.dim() == 4 && r.cos.dim() == 2 && x_in.size(2) == r.cos.size(0) && r.sin.shape() == r.cos.shape(),
                "rope_at_positions: x ", shape_str(x_in.shape()), " for ", r.cos.size(0), " positions");
  const int64_t d = x_in.size(3), n = x_in.size(2), bh = x_in.size(0) * x_in.size(1);
  LINSPEC_CHECK(d % 2 == 0 && r.cos.size(1) == d / 2 && r.cos.dtype() == x_in.dtype(), "rope_at_positions: ",
                r.cos.size(1), " frequencies of ", dtype_name(r.cos.dtype()), " for head dim ", d, " of ",
                dtype_name(x_in.dtype()));
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  detail::dispatch_float(x.dtype(), "rope_at_positions", [&](auto t) {
    using T = decltype(t);
    const auto& k = detail::float_kernels<T>(x).rope;
    detail::kernel(k.apply, "rope_apply", x)(x.device_data<T>(), r.cos.device_data<T>(), r.sin.device_data<T>(),
                                             out.device_data<T>(), bh, n, d, false);
  });
  return out;
}

Tensor rope_at_positions(const Tensor& x_in, const std::vector<int64_t>& positions, const Tensor& freq_in) {
  detail::check_float(x_in, "rope_at_positions", "x");
  LINSPEC_CHECK(x_in.dim() == 4 && x_in.size(2) == static_cast<int64_t>(positions.size()), "rope_at_positions: x ",
                shape_str(x_in.shape()), " for ", positions.size(), " positions");
  LINSPEC_CHECK(x_in.size(3) % 2 == 0 && freq_in.numel() == x_in.size(3) / 2, "rope_at_positions: inv_freq has ",
                freq_in.numel(), " values, head dim ", x_in.size(3));
  if (positions.empty()) return Tensor::empty(x_in.shape(), x_in.dtype(), x_in.device());
  return rope_with_rows(x_in, rope_rows_at_positions(positions, freq_in, x_in.dtype()));
}

}  // namespace linspec::ops
