// cross_entropy, kl_divergence, mse: scalar losses whose backward closures scale by the upstream gradient.
#include <algorithm>
#include <cmath>

#include "core/ops/dispatch.h"
#include "kernels/loss.h"

namespace linspec::ops {
namespace {
namespace k = kernels::cpu;

// Rows and vocabulary of logits [..., V].
std::pair<int64_t, int64_t> rows_and_vocab(const Tensor& logits, const char* op) {
  LINSPEC_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, op, ": logits must be [N, V], got ",
                shape_str(logits.shape()));
  const int64_t v = logits.size(-1);
  return {logits.numel() / v, v};
}
}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets_in, int32_t ignore_index) {
  detail::check_cpu_float(logits_in, "cross_entropy", "logits");
  LINSPEC_CHECK(targets_in.defined() && targets_in.dtype() == DType::I32, "cross_entropy: targets must be i32");
  const auto [n, v] = rows_and_vocab(logits_in, "cross_entropy");
  LINSPEC_CHECK(targets_in.numel() == n, "cross_entropy: ", targets_in.numel(), " targets for logits ",
                shape_str(logits_in.shape()));
  Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  const int32_t* tg = targets.data<int32_t>();
  for (int64_t r = 0; r < n; ++r)
    LINSPEC_CHECK(tg[r] == ignore_index || (tg[r] >= 0 && tg[r] < v), "cross_entropy: target id ", tg[r],
                  " at row ", r, " is outside the vocabulary [0, ", v, ") and is not ignore_index ", ignore_index);

  Tensor lse = Tensor::empty({n}, logits.dtype());
  Tensor loss = Tensor::empty({}, logits.dtype());
  int64_t count = 0;
  detail::dispatch_float(logits.dtype(), "cross_entropy", [&](auto t) {
    using T = decltype(t);
    const auto sums = k::cross_entropy_forward(logits.data<T>(), tg, n, v, ignore_index, lse.data<T>());
    count = sums.count;
    *loss.data<T>() = static_cast<T>(count > 0 ? sums.loss_sum / static_cast<double>(count) : 0.0);
  });

  if (any_requires_grad({&logits_in})) {
    record_op(loss, [logits_in, logits = logits.detach(), targets, lse, count, ignore_index, n, v](const Tensor& g) {
      Tensor grad = Tensor::empty(logits.shape(), logits.dtype());
      const double coef = count > 0 ? g.item() / static_cast<double>(count) : 0.0;  // no counted rows: zero grad
      detail::dispatch_float(logits.dtype(), "cross_entropy backward", [&](auto t) {
        using T = decltype(t);
        k::cross_entropy_backward(logits.data<T>(), targets.data<int32_t>(), lse.data<T>(), n, v, ignore_index,
                                  static_cast<T>(coef), grad.data<T>());
      });
      accumulate_grad(logits_in, grad);
    });
  }
  return loss;
}

Tensor kl_divergence(const Tensor& student_in, const Tensor& teacher_in, double temperature) {
  detail::check_cpu_float(student_in, "kl_divergence", "student_logits");
  detail::check_cpu_float(teacher_in, "kl_divergence", "teacher_logits");
  detail::check_same_dtype(student_in, teacher_in, "kl_divergence");
  LINSPEC_CHECK(student_in.shape() == teacher_in.shape(), "kl_divergence: student ", shape_str(student_in.shape()),
                " and teacher ", shape_str(teacher_in.shape()), " differ");
  LINSPEC_CHECK(temperature > 0, "kl_divergence: temperature must be positive, got ", temperature);
  const auto [n, v] = rows_and_vocab(student_in, "kl_divergence");
  Tensor s = student_in.contiguous(), t = teacher_in.contiguous();
  Tensor lse_s = Tensor::empty({n}, s.dtype()), lse_t = Tensor::empty({n}, s.dtype());
  Tensor row_kl = Tensor::empty({n}, s.dtype());
  Tensor loss = Tensor::empty({}, s.dtype());
  const double tau = temperature;
  detail::dispatch_float(s.dtype(), "kl_divergence", [&](auto z) {
    using T = decltype(z);
    const double total = k::kl_forward(s.data<T>(), t.data<T>(), n, v, static_cast<T>(tau), lse_s.data<T>(),
                                       lse_t.data<T>(), row_kl.data<T>());
    *loss.data<T>() = static_cast<T>(n > 0 ? tau * tau * total / static_cast<double>(n) : 0.0);
  });

  if (any_requires_grad({&student_in, &teacher_in})) {
    record_op(loss, [student_in, teacher_in, s = s.detach(), t = t.detach(), lse_s, lse_t, row_kl, tau, n,
                     v](const Tensor& g) {
      // d(τ² · mean KL)/dz = τ²/n · (1/τ) · dKL/d(z/τ)
      const double coef = g.item() * tau / static_cast<double>(std::max<int64_t>(n, 1));
      Tensor gs = student_in.requires_grad() ? Tensor::empty(s.shape(), s.dtype()) : Tensor();
      Tensor gt = teacher_in.requires_grad() ? Tensor::empty(t.shape(), t.dtype()) : Tensor();
      detail::dispatch_float(s.dtype(), "kl_divergence backward", [&](auto z) {
        using T = decltype(z);
        k::kl_backward(s.data<T>(), t.data<T>(), lse_s.data<T>(), lse_t.data<T>(), row_kl.data<T>(), n, v,
                       static_cast<T>(tau), static_cast<T>(coef), gs.defined() ? gs.data<T>() : nullptr,
                       gt.defined() ? gt.data<T>() : nullptr);
      });
      if (gs.defined()) accumulate_grad(student_in, gs);
      if (gt.defined()) accumulate_grad(teacher_in, gt);
    });
  }
  return loss;
}

Tensor mse(const Tensor& a_in, const Tensor& b_in) {
  detail::check_cpu_float(a_in, "mse", "a");
  detail::check_cpu_float(b_in, "mse", "b");
  detail::check_same_dtype(a_in, b_in, "mse");
  LINSPEC_CHECK(a_in.shape() == b_in.shape(), "mse: shapes ", shape_str(a_in.shape()), " and ",
                shape_str(b_in.shape()), " differ");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t n = a.numel();
  Tensor loss = Tensor::empty({}, a.dtype());
  detail::dispatch_float(a.dtype(), "mse", [&](auto z) {
    using T = decltype(z);
    const double sum = k::squared_error_sum(a.data<T>(), b.data<T>(), n);
    *loss.data<T>() = static_cast<T>(n > 0 ? sum / static_cast<double>(n) : 0.0);
  });

  if (any_requires_grad({&a_in, &b_in})) {
    record_op(loss, [a_in, b_in, a = a.detach(), b = b.detach(), n](const Tensor& g) {
      const double coef = 2.0 * g.item() / static_cast<double>(std::max<int64_t>(n, 1));
      Tensor ga = a_in.requires_grad() ? Tensor::empty(a.shape(), a.dtype()) : Tensor();
      Tensor gb = b_in.requires_grad() ? Tensor::empty(b.shape(), b.dtype()) : Tensor();
      detail::dispatch_float(a.dtype(), "mse backward", [&](auto z) {
        using T = decltype(z);
        k::squared_error_backward(a.data<T>(), b.data<T>(), n, static_cast<T>(coef),
                                  ga.defined() ? ga.data<T>() : nullptr, gb.defined() ? gb.data<T>() : nullptr);
      });
      if (ga.defined()) accumulate_grad(a_in, ga);
      if (gb.defined()) accumulate_grad(b_in, gb);
    });
  }
  return loss;
}

}  // namespace linspec::ops
