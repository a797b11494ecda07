// CUDA twins of kernels/loss.h: cross-entropy and distillation KL over rows of logits, chunked over the vocabulary
// (one block per row streams the row once with an online logsumexp), and squared error. Device buffers, f32 / f64.
// The scalar results come back to the host like the CPU versions (one synchronisation per call); per-row outputs
// (lse, row_kl) stay on the device. Sums are deterministic (fixed-order double reductions).
#pragma once
#include <cstdint>

#include "kernels/loss.h"

namespace linspec::kernels::cuda {

using cpu::CrossEntropySums;

template <typename T>
CrossEntropySums cross_entropy_forward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                                       int32_t ignore_index, T* lse);
template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, int64_t n, int64_t v,
                            int32_t ignore_index, T coef, T* grad);

template <typename T>
double kl_forward(const T* student, const T* teacher, int64_t n, int64_t v, T tau, T* lse_s, T* lse_t, T* row_kl);
template <typename T>
void kl_backward(const T* student, const T* teacher, const T* lse_s, const T* lse_t, const T* row_kl, int64_t n,
                 int64_t v, T tau, T coef, T* grad_student, T* grad_teacher);

template <typename T>
double squared_error_sum(const T* a, const T* b, int64_t n);
template <typename T>
void squared_error_backward(const T* a, const T* b, int64_t n, T coef, T* grad_a, T* grad_b);

}  // namespace linspec::kernels::cuda
