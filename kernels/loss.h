// Fused losses over rows of logits: cross-entropy, distillation KL, and mean squared error (f32 / f64 tables).
// Row-major contiguous buffers; the scalar reductions accumulate in double and come back to the host. `lse`
// buffers hold the per-row logsumexp the forward saves so the backward needs one pass and no softmax matrix.
#pragma once
#include <cstdint>

namespace linspec::kernels {

struct CrossEntropySums {
  double loss_sum = 0;  // Σ over counted rows of lse - logit[target]
  int64_t count = 0;    // rows whose target != ignore_index
};

template <typename T>
struct LossKernels {
  // logits [n, v], targets [n] (already validated: in [0, v) or == ignore_index). lse[r] = 0 for ignored rows.
  CrossEntropySums (*cross_entropy_forward)(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                                            int32_t ignore_index, T* lse);
  // grad = coef · (softmax − onehot(target)) per counted row, 0 for ignored rows. grad may be logits itself
  // (linear_cross_entropy turns each chunk's logits into their gradient in place): each element is read, then written.
  void (*cross_entropy_backward)(const T* logits, const int32_t* targets, const T* lse, int64_t n, int64_t v,
                                 int32_t ignore_index, T coef, T* grad);
  // Per row r: KL(p_t ‖ p_s) with p = softmax(z / tau); fills lse_s, lse_t (of z / tau) and row_kl; returns Σ_r KL.
  double (*kl_forward)(const T* student, const T* teacher, int64_t n, int64_t v, T tau, T* lse_s, T* lse_t,
                       T* row_kl);
  // d/d student = coef · (p_s − p_t);  d/d teacher = coef · p_t · (log p_t − log p_s − KL_row).
  // (coef = upstream · τ² / n / τ.) Either output may be null.
  void (*kl_backward)(const T* student, const T* teacher, const T* lse_s, const T* lse_t, const T* row_kl, int64_t n,
                      int64_t v, T tau, T coef, T* grad_student, T* grad_teacher);
  // Σ (a − b)²
  double (*squared_error_sum)(const T* a, const T* b, int64_t n);
  // grad_a = coef · (a − b), grad_b = −grad_a; either may be null.
  void (*squared_error_backward)(const T* a, const T* b, int64_t n, T coef, T* grad_a, T* grad_b);
  // Per row r, with p = softmax(target_r) and q = softmax(draft_r): JSD(p, q) (tvd = false) or TVD(p, q) =
  // ½ Σ|p − q|. Returns Σ_r of it and writes d divergence_r / d draft_r (the softmax Jacobian applied) to grad_rows.
  double (*bounded_divergence)(const T* draft, const T* target, int64_t n, int64_t v, bool tvd, T* grad_rows);
};

}  // namespace linspec::kernels
