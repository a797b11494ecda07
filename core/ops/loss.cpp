// cross_entropy, kl_divergence, mse: scalar losses whose backward closures scale by the upstream gradient.
#include <algorithm>
#include <cmath>

#include "core/gemm_observer.h"

#include "core/ops/dispatch.h"

namespace linspec::ops {
namespace {
namespace k = kernels;

// Rows and vocabulary of logits [..., V].
std::pair<int64_t, int64_t> rows_and_vocab(const Tensor& logits, const char* op) {
  LINSPEC_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, op, ": logits must be [N, V], got ",
                shape_str(logits.shape()));
  const int64_t v = logits.size(-1);
  return {logits.numel() / v, v};
}

// The upstream gradient of a scalar loss. Host code reads it when it lives in host memory; on another device the
// kernels run with the coefficient for an upstream of 1 and the result is scaled by g there, so the backward never
// stalls on a device-to-host copy.
double upstream_on_host(const Tensor& g) { return detail::host_readable(g) ? g.item() : 1.0; }
// Targets are ids in [0, vocab) or ignore_index, checked on their own device; the offending id is read back only
// for the message.
void check_target_ids(const Tensor& targets, int64_t vocab, int32_t ignore_index, const char* op) {
  if (const int64_t r = detail::first_invalid_id(targets, vocab, ignore_index); r >= 0)
    LINSPEC_CHECK(false, op, ": target id ", targets.slice(0, r, r + 1).to_vector<int32_t>()[0],
                  " at row ", r, " is outside the vocabulary [0, ", vocab, ") and is not ignore_index ", ignore_index);
}

// Takes the gradient by value and hands it on moved: a buffer with a single owner is adopted by accumulate_grad
// without a copy (for the LM head's logits that copy is a full [N, V] pass).
Tensor times_upstream(Tensor grad, const Tensor& g) {
  if (!grad.defined() || detail::host_readable(g)) return grad;
  return mul(grad, g.detach().reshape({}));
}
}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets_in, int32_t ignore_index) {
  detail::check_float(logits_in, "cross_entropy", "logits");
  LINSPEC_CHECK(targets_in.defined() && targets_in.dtype() == DType::I32, "cross_entropy: targets must be i32");
  // Plain variables, not a structured binding: lambdas below capture them (clang before 16 cannot).
  const auto nv = rows_and_vocab(logits_in, "cross_entropy");
  const int64_t n = nv.first, v = nv.second;
  LINSPEC_CHECK(targets_in.numel() == n, "cross_entropy: ", targets_in.numel(), " targets for logits ",
                shape_str(logits_in.shape()));
  Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  detail::backend_of("cross_entropy", {&logits, &targets});
  check_target_ids(targets, v, ignore_index, "cross_entropy");
  const int32_t* tg = targets.device_data<int32_t>();

  Tensor lse = Tensor::empty({n}, logits.dtype(), logits.device());
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  int64_t count = 0;
  detail::dispatch_float(logits.dtype(), "cross_entropy", [&](auto t) {
    using T = decltype(t);
    const auto sums =
        detail::kernel(detail::float_kernels<T>(logits).loss.cross_entropy_forward, "cross_entropy_forward", logits)(
            logits.device_data<T>(), tg, n, v, ignore_index, lse.device_data<T>());
    count = sums.count;
    loss.fill(count > 0 ? sums.loss_sum / static_cast<double>(count) : 0.0);
  });

  if (any_requires_grad({&logits_in})) {
    record_op(loss, [logits_in, logits = logits.detach(), targets, lse, count, ignore_index, n, v](const Tensor& g) {
      Tensor grad = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
      // No counted rows: zero gradient.
      const double coef = count > 0 ? upstream_on_host(g) / static_cast<double>(count) : 0.0;
      detail::dispatch_float(logits.dtype(), "cross_entropy backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(logits).loss.cross_entropy_backward, "cross_entropy_backward", logits)(
            logits.device_data<T>(), targets.device_data<int32_t>(), lse.device_data<T>(), n, v, ignore_index,
            static_cast<T>(coef), grad.device_data<T>());
      });
      accumulate_grad(logits_in, times_upstream(std::move(grad), g));
    });
  }
  return loss;
}

Tensor linear_cross_entropy(const Tensor& hidden_in, const Tensor& weight_in, const Tensor& targets_in, int64_t chunk,
                            MatmulPrecision precision, int32_t ignore_index) {
  const char* op = "linear_cross_entropy";
  detail::check_float(hidden_in, op, "hidden");
  detail::check_float(weight_in, op, "weight");
  detail::check_same_dtype(hidden_in, weight_in, op);
  LINSPEC_CHECK(targets_in.defined() && targets_in.dtype() == DType::I32, op, ": targets must be i32");
  LINSPEC_CHECK(weight_in.dim() == 2 && hidden_in.dim() >= 1 && hidden_in.size(-1) == weight_in.size(1), op,
                ": hidden ", shape_str(hidden_in.shape()), " and weight ", shape_str(weight_in.shape()),
                " (expected [..., D] and [V, D])");
  LINSPEC_CHECK(chunk > 0, op, ": chunk must be positive, got ", chunk);
  const int64_t V = weight_in.size(0), D = weight_in.size(1), N = hidden_in.numel() / std::max<int64_t>(D, 1);
  LINSPEC_CHECK(targets_in.numel() == N, op, ": ", targets_in.numel(), " targets for ", N, " rows");
  const Tensor h = hidden_in.contiguous().reshape({N, D}), w = weight_in.contiguous(),
               targets = targets_in.contiguous().reshape({N});
  detail::backend_of(op, {&h, &w, &targets});
  check_target_ids(targets, V, ignore_index, op);
  const bool need_h = grad_enabled() && hidden_in.requires_grad(), need_w = grad_enabled() && weight_in.requires_grad();
  const int64_t rows = std::min(chunk, std::max<int64_t>(N, 1));
  Tensor grad_h = need_h ? Tensor::empty({N, D}, h.dtype(), h.device()) : Tensor();
  Tensor grad_w = need_w ? Tensor::empty({V, D}, w.dtype(), w.device()) : Tensor();
  // One [rows, V] buffer: the backward kernel turns each chunk's logits into their gradient in place.
  Tensor logits = Tensor::empty({rows, V}, h.dtype(), h.device()), lse = Tensor::empty({rows}, h.dtype(), h.device());
  double loss_sum = 0;
  int64_t count = 0;  // counted rows, from each chunk's forward: the gradients are divided by it in the backward
  const int32_t* tg = targets.device_data<int32_t>();
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const int64_t c = std::min(chunk, N - r0);
    const Tensor hc = h.slice(0, r0, r0 + c);
    Tensor zc = logits.slice(0, 0, c), gc = need_h || need_w ? zc : Tensor();
    detail::gemm_into({1, c, V, D, false, true, false}, hc, w, zc, 0.f, precision, GemmRole::Forward);
    detail::dispatch_float(h.dtype(), op, [&](auto zero) {
      using T = decltype(zero);
      const auto& k = detail::float_kernels<T>(h).loss;
      const auto sums = detail::kernel(k.cross_entropy_forward, "cross_entropy_forward", h)(
          zc.device_data<T>(), tg + r0, c, V, ignore_index, lse.device_data<T>());
      loss_sum += sums.loss_sum, count += sums.count;
      if (gc.defined())  // the gradient of the sum over rows; the mean's 1/count comes in the backward
        detail::kernel(k.cross_entropy_backward, "cross_entropy_backward", h)(
            zc.device_data<T>(), tg + r0, lse.device_data<T>(), c, V, ignore_index, T(1), gc.device_data<T>());
    });
    if (need_h) {
      Tensor ghc = grad_h.slice(0, r0, r0 + c);
      detail::gemm_into({1, c, D, V, false, false, false}, gc, w, ghc, 0.f, precision, GemmRole::GradA);
    }
    if (need_w)  // the first chunk overwrites, the others accumulate
      detail::gemm_into({1, V, D, c, true, false, false}, gc, hc, grad_w, r0 == 0 ? 0.f : 1.f, precision,
                        GemmRole::GradB);
  }
  Tensor loss = Tensor::empty({}, h.dtype(), h.device());
  loss.fill(count > 0 ? loss_sum / static_cast<double>(count) : 0.0);
  if (need_h || need_w) {
    const double inv_count = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;  // no counted rows: zero gradient
    record_op(loss, [hidden_in, weight_in, grad_h, grad_w, inv_count](const Tensor& g) {
      // The gradients are those of the summed loss: one pass scales them by upstream / count.
      auto scaled = [&](const Tensor& grad) {
        if (!detail::host_readable(g)) return mul(grad, scale(g.detach().reshape({}), inv_count));
        return scale(grad, g.item() * inv_count);
      };
      if (grad_h.defined()) accumulate_grad(hidden_in, scaled(grad_h).reshape(hidden_in.shape()));
      if (grad_w.defined()) accumulate_grad(weight_in, scaled(grad_w));
    });
  }
  return loss;
}

Tensor kl_divergence(const Tensor& student_in, const Tensor& teacher_in, double temperature) {
  detail::check_float(student_in, "kl_divergence", "student_logits");
  detail::check_float(teacher_in, "kl_divergence", "teacher_logits");
  detail::check_same_dtype(student_in, teacher_in, "kl_divergence");
  detail::backend_of("kl_divergence", {&student_in, &teacher_in});
  LINSPEC_CHECK(student_in.shape() == teacher_in.shape(), "kl_divergence: student ", shape_str(student_in.shape()),
                " and teacher ", shape_str(teacher_in.shape()), " differ");
  LINSPEC_CHECK(temperature > 0, "kl_divergence: temperature must be positive, got ", temperature);
  // Plain variables, not a structured binding: lambdas below capture them (clang before 16 cannot).
  const auto nv = rows_and_vocab(student_in, "kl_divergence");
  const int64_t n = nv.first, v = nv.second;
  Tensor s = student_in.contiguous(), t = teacher_in.contiguous();
  Tensor lse_s = Tensor::empty({n}, s.dtype(), s.device()), lse_t = Tensor::empty({n}, s.dtype(), s.device());
  Tensor row_kl = Tensor::empty({n}, s.dtype(), s.device());
  Tensor loss = Tensor::empty({}, s.dtype(), s.device());
  const double tau = temperature;
  detail::dispatch_float(s.dtype(), "kl_divergence", [&](auto z) {
    using T = decltype(z);
    const double total = detail::kernel(detail::float_kernels<T>(s).loss.kl_forward, "kl_forward", s)(
        s.device_data<T>(), t.device_data<T>(), n, v, static_cast<T>(tau), lse_s.device_data<T>(),
        lse_t.device_data<T>(), row_kl.device_data<T>());
    loss.fill(n > 0 ? tau * tau * total / static_cast<double>(n) : 0.0);
  });

  if (any_requires_grad({&student_in, &teacher_in})) {
    record_op(loss, [student_in, teacher_in, s = s.detach(), t = t.detach(), lse_s, lse_t, row_kl, tau, n,
                     v](const Tensor& g) {
      // d(τ² · mean KL)/dz = τ²/n · (1/τ) · dKL/d(z/τ)
      const double coef = upstream_on_host(g) * tau / static_cast<double>(std::max<int64_t>(n, 1));
      Tensor gs = student_in.requires_grad() ? Tensor::empty(s.shape(), s.dtype(), s.device()) : Tensor();
      Tensor gt = teacher_in.requires_grad() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor();
      detail::dispatch_float(s.dtype(), "kl_divergence backward", [&](auto z) {
        using T = decltype(z);
        detail::kernel(detail::float_kernels<T>(s).loss.kl_backward, "kl_backward", s)(
            s.device_data<T>(), t.device_data<T>(), lse_s.device_data<T>(), lse_t.device_data<T>(),
            row_kl.device_data<T>(), n, v, static_cast<T>(tau), static_cast<T>(coef),
            gs.defined() ? gs.device_data<T>() : nullptr, gt.defined() ? gt.device_data<T>() : nullptr);
      });
      if (gs.defined()) accumulate_grad(student_in, times_upstream(std::move(gs), g));
      if (gt.defined()) accumulate_grad(teacher_in, times_upstream(std::move(gt), g));
    });
  }
  return loss;
}

Tensor bounded_divergence(const Tensor& draft_in, const Tensor& target_in, bool tvd) {
  const char* op = tvd ? "tvd" : "jsd";
  detail::check_float(draft_in, op, "draft_logits");
  detail::check_float(target_in, op, "target_logits");
  detail::check_same_dtype(draft_in, target_in, op);
  detail::backend_of(op, {&draft_in, &target_in});
  LINSPEC_CHECK(draft_in.shape() == target_in.shape(), op, ": draft ", shape_str(draft_in.shape()), " and target ",
                shape_str(target_in.shape()), " differ");
  // Plain variables, not a structured binding: lambdas below capture them (clang before 16 cannot).
  const auto nv = rows_and_vocab(draft_in, op);
  const int64_t n = nv.first, v = nv.second;
  Tensor z = draft_in.contiguous(), t = target_in.detach().contiguous();
  Tensor grad_rows = Tensor::empty(z.shape(), z.dtype(), z.device());  // d divergence_r / d z_r, for the backward
  Tensor loss = Tensor::empty({}, z.dtype(), z.device());
  detail::dispatch_float(z.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const double total = detail::kernel(detail::float_kernels<T>(z).loss.bounded_divergence, "bounded_divergence", z)(
        z.device_data<T>(), t.device_data<T>(), n, v, tvd, grad_rows.device_data<T>());
    loss.fill(n > 0 ? total / static_cast<double>(n) : 0.0);
  });
  if (any_requires_grad({&draft_in})) {
    record_op(loss, [draft_in, grad_rows, n](const Tensor& g) {
      const double coef = upstream_on_host(g) / static_cast<double>(std::max<int64_t>(n, 1));
      accumulate_grad(draft_in, times_upstream(scale(grad_rows, coef), g));
    });
  }
  return loss;
}

Tensor mse(const Tensor& a_in, const Tensor& b_in) {
  detail::check_float(a_in, "mse", "a");
  detail::check_float(b_in, "mse", "b");
  detail::check_same_dtype(a_in, b_in, "mse");
  detail::backend_of("mse", {&a_in, &b_in});
  LINSPEC_CHECK(a_in.shape() == b_in.shape(), "mse: shapes ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()),
                " differ");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t n = a.numel();
  Tensor loss = Tensor::empty({}, a.dtype(), a.device());
  detail::dispatch_float(a.dtype(), "mse", [&](auto z) {
    using T = decltype(z);
    const double sum = detail::kernel(detail::float_kernels<T>(a).loss.squared_error_sum, "squared_error_sum", a)(
        a.device_data<T>(), b.device_data<T>(), n);
    loss.fill(n > 0 ? sum / static_cast<double>(n) : 0.0);
  });

  if (any_requires_grad({&a_in, &b_in})) {
    record_op(loss, [a_in, b_in, a = a.detach(), b = b.detach(), n](const Tensor& g) {
      const double coef = 2.0 * upstream_on_host(g) / static_cast<double>(std::max<int64_t>(n, 1));
      Tensor ga = a_in.requires_grad() ? Tensor::empty(a.shape(), a.dtype(), a.device()) : Tensor();
      Tensor gb = b_in.requires_grad() ? Tensor::empty(b.shape(), b.dtype(), b.device()) : Tensor();
      detail::dispatch_float(a.dtype(), "mse backward", [&](auto z) {
        using T = decltype(z);
        detail::kernel(detail::float_kernels<T>(a).loss.squared_error_backward, "squared_error_backward", a)(
            a.device_data<T>(), b.device_data<T>(), n, static_cast<T>(coef),
            ga.defined() ? ga.device_data<T>() : nullptr, gb.defined() ? gb.device_data<T>() : nullptr);
      });
      if (ga.defined()) accumulate_grad(a_in, times_upstream(std::move(ga), g));
      if (gb.defined()) accumulate_grad(b_in, times_upstream(std::move(gb), g));
    });
  }
  return loss;
}

}  // namespace linspec::ops
