// add / sub / mul / scale with a suffix-broadcast second operand; forward and backward together.
#include "core/ops/dispatch.h"
#include "kernels/elementwise.h"

namespace linspec::ops {
namespace {
namespace k = kernels::cpu;

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
  Tensor out = Tensor::empty(like.shape(), g.dtype());
  detail::dispatch_float(g.dtype(), "reduce", [&](auto t) {
    using T = decltype(t);
    k::reduce_leading(g.data<T>(), out.data<T>(), g.numel(), like.numel());
  });
  return out;
}

enum class Bin { Add, Sub, Mul };

Tensor binary(const Tensor& a_in, const Tensor& b_in, Bin kind, const char* name) {
  detail::check_cpu_float(a_in, name, "a");
  detail::check_cpu_float(b_in, name, "b");
  detail::check_same_dtype(a_in, b_in, name);
  const int64_t nb = broadcast_count(a_in, b_in, name);
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  detail::dispatch_float(a.dtype(), name, [&](auto t) {
    using T = decltype(t);
    if (kind == Bin::Add) k::add(a.data<T>(), b.data<T>(), out.data<T>(), a.numel(), nb);
    if (kind == Bin::Sub) k::sub(a.data<T>(), b.data<T>(), out.data<T>(), a.numel(), nb);
    if (kind == Bin::Mul) k::mul(a.data<T>(), b.data<T>(), out.data<T>(), a.numel(), nb);
  });
  if (any_requires_grad({&a_in, &b_in})) {
    // Add/Sub need no saved data; Mul keeps both operands.
    Tensor sa = kind == Bin::Mul ? a : Tensor(), sb = kind == Bin::Mul ? b : Tensor();
    record_op(out, [a_in, b_in, sa, sb, kind, nb](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      const int64_t n = g.numel();
      detail::dispatch_float(g.dtype(), "binary backward", [&](auto t) {
        using T = decltype(t);
        if (a_in.requires_grad()) {
          if (kind == Bin::Mul) {
            Tensor ga = Tensor::empty(g.shape(), g.dtype());
            k::mul(g.data<T>(), sb.data<T>(), ga.data<T>(), n, nb);
            accumulate_grad(a_in, ga);
          } else {
            accumulate_grad(a_in, g);
          }
        }
        if (b_in.requires_grad()) {
          Tensor gb = g;
          if (kind == Bin::Mul) {
            gb = Tensor::empty(g.shape(), g.dtype());
            k::mul(g.data<T>(), sa.data<T>(), gb.data<T>(), n, n);
            // a * b[j] with b broadcast: the product above used a elementwise, then reduce.
          } else if (kind == Bin::Sub) {
            gb = Tensor::empty(g.shape(), g.dtype());
            k::scale(g.data<T>(), T(-1), gb.data<T>(), n);
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
  detail::check_cpu_float(a_in, "scale", "a");
  Tensor a = a_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  detail::dispatch_float(a.dtype(), "scale", [&](auto t) {
    using T = decltype(t);
    k::scale(a.data<T>(), static_cast<T>(s), out.data<T>(), a.numel());
  });
  if (any_requires_grad({&a_in})) {
    record_op(out, [a_in, s](const Tensor& g) { accumulate_grad(a_in, scale(g.detach(), s)); });
  }
  return out;
}

}  // namespace linspec::ops
