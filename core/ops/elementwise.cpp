// add / sub / mul / scale with a suffix-broadcast second operand; forward and backward together.
#include "core/ops/dispatch.h"

namespace linspec::ops {
namespace {

// b broadcasts when its shape is a suffix of a's.
int64_t broadcast_count(const Tensor& a, const Tensor& b, const char* op) {
  const auto& as = a.shape();
  const auto& bs = b.shape();
  bool suffix = bs.size() <= as.size() && std::equal(bs.rbegin(), bs.rend(), as.rbegin());
  LINSPEC_CHECK(suffix, op, ": shape ", shape_str(bs), " does not broadcast to ", shape_str(as));
  return b.numel();
}

// Gradient of the broadcast operand: sum over the leading dims.
Tensor reduce_to(const Tensor& g, const Tensor& like) {
  if (g.numel() == like.numel()) return g;
  const auto& be = detail::backend_of("reduce", {&g});
  Tensor out = Tensor::empty(like.shape(), g.dtype(), g.device());
  detail::dispatch_float(g.dtype(), "reduce", [&](auto t) {
    using T = decltype(t);
    detail::kernel(be.of<T>().elementwise.reduce_leading, "reduce", be)(g.device_data<T>(), out.device_data<T>(),
                                                                        g.numel(), like.numel());
  });
  return out;
}

enum class Bin { Add, Sub, Mul };

Tensor binary(const Tensor& a_in, const Tensor& b_in, Bin kind, const char* name) {
  detail::check_float(a_in, name, "a");
  detail::check_float(b_in, name, "b");
  detail::check_same_dtype(a_in, b_in, name);
  const auto& be = detail::backend_of(name, {&a_in, &b_in});
  const int64_t nb = broadcast_count(a_in, b_in, name);
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float(a.dtype(), name, [&](auto t) {
    using T = decltype(t);
    const auto& k = be.of<T>().elementwise;
    auto fn = detail::kernel(kind == Bin::Add ? k.add : kind == Bin::Sub ? k.sub : k.mul, name, be);
    fn(a.device_data<T>(), b.device_data<T>(), out.device_data<T>(), a.numel(), nb);
  });
  if (any_requires_grad({&a_in, &b_in})) {
    // Add/Sub need no saved data; Mul keeps both operands.
    Tensor sa = kind == Bin::Mul ? a : Tensor(), sb = kind == Bin::Mul ? b : Tensor();
    record_op(out, [a_in, b_in, sa, sb, kind, nb](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      const auto& be = detail::backend_of("binary backward", {&g, &sa, &sb});
      const int64_t n = g.numel();
      detail::dispatch_float(g.dtype(), "binary backward", [&](auto t) {
        using T = decltype(t);
        const auto& k = be.of<T>().elementwise;
        if (a_in.requires_grad()) {
          if (kind == Bin::Mul) {
            Tensor ga = Tensor::empty(g.shape(), g.dtype(), g.device());
            k.mul(g.device_data<T>(), sb.device_data<T>(), ga.device_data<T>(), n, nb);
            accumulate_grad(a_in, ga);
          } else {
            accumulate_grad(a_in, g);
          }
        }
        if (b_in.requires_grad()) {
          Tensor gb = g;
          if (kind == Bin::Mul) {
            gb = Tensor::empty(g.shape(), g.dtype(), g.device());
            k.mul(g.device_data<T>(), sa.device_data<T>(), gb.device_data<T>(), n, n);
            // a * b[j] with b broadcast: the product above used a elementwise, then reduce.
          } else if (kind == Bin::Sub) {
            gb = Tensor::empty(g.shape(), g.dtype(), g.device());
            k.scale(g.device_data<T>(), T(-1), gb.device_data<T>(), n);
          }
          accumulate_grad(b_in, reduce_to(gb, b_in));
        }
      });
    });
  }
  return out;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Add, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Sub, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, Bin::Mul, "mul"); }

Tensor scale(const Tensor& a_in, double s) {
  detail::check_float(a_in, "scale", "a");
  const auto& be = detail::backend_of("scale", {&a_in});
  Tensor a = a_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  detail::dispatch_float(a.dtype(), "scale", [&](auto t) {
    using T = decltype(t);
    detail::kernel(be.of<T>().elementwise.scale, "scale", be)(a.device_data<T>(), static_cast<T>(s),
                                                              out.device_data<T>(), a.numel());
  });
  if (any_requires_grad({&a_in})) {
    record_op(out, [a_in, s](const Tensor& g) { accumulate_grad(a_in, scale(g.detach(), s)); });
  }
  return out;
}

namespace {
Tensor apply_dropout(const Tensor& x_in, double p, uint64_t key) {
  const auto& be = detail::backend_of("dropout", {&x_in});
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  detail::dispatch_float(x.dtype(), "dropout", [&](auto t) {
    using T = decltype(t);
    detail::kernel(be.of<T>().elementwise.dropout, "dropout", be)(x.device_data<T>(), out.device_data<T>(), x.numel(),
                                                                  p, key);
  });
  return out;
}
}  // namespace

Tensor dropout(const Tensor& x_in, double p, uint64_t key) {
  detail::check_float(x_in, "dropout", "x");
  LINSPEC_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  Tensor out = apply_dropout(x_in, p, key);
  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in, p, key](const Tensor& g) { accumulate_grad(x_in, apply_dropout(g.detach(), p, key)); });
  }
  return out;
}

}  // namespace linspec::ops
