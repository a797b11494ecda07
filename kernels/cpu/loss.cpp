// Loss kernels (see kernels/loss.h): rows spread over threads, vectorised exp inside a row.
// 512-bit vectors for the exp loops on AVX-512 (see kernels/cpu/attention.cpp for why this is first).
#pragma GCC target("prefer-vector-width=512")

#include "kernels/backend.h"
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/simd_math.h"

namespace linspec::kernels::cpu {
namespace {

constexpr int64_t kChunk = 512;  // a chunk is read twice (max, then exp-sum) while it sits in L1
// Fewer elements than this run on one thread (thread start-up would dominate).
constexpr int64_t kParallelMin = int64_t(1) << 15;

// log Σ_j exp(x_j · inv_tau) in a single pass over the row (online max, rescaling the running sum).
template <typename T>
T row_logsumexp(const T* x, int64_t v, T inv_tau) {
  T m = -std::numeric_limits<T>::infinity();
  double sum = 0;
  for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
    const int64_t c1 = std::min(v, c0 + kChunk);
    const T cm = max_of(x + c0, c1 - c0) * inv_tau;
    if (cm > m) {
      sum *= std::exp(static_cast<double>(m) - static_cast<double>(cm));
      m = cm;
    }
    T cs = 0;
#pragma omp simd reduction(+ : cs)
    for (int64_t j = c0; j < c1; ++j) cs += exp_fast(x[j] * inv_tau - m);
    sum += cs;
  }
  return static_cast<T>(static_cast<double>(m) + std::log(sum));
}

}  // namespace

template <typename T>
CrossEntropySums cross_entropy_forward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                                       int32_t ignore_index, T* lse) {
  double loss = 0;
  int64_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss, count) if (n * v > kParallelMin)
  for (int64_t r = 0; r < n; ++r) {
    if (targets[r] == ignore_index) {
      lse[r] = 0;
      continue;
    }
    const T* x = logits + r * v;
    lse[r] = row_logsumexp(x, v, T(1));
    loss += static_cast<double>(lse[r]) - static_cast<double>(x[targets[r]]);
    ++count;
  }
  return {loss, count};
}

template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, int64_t n, int64_t v,
                            int32_t ignore_index, T coef, T* grad) {
#pragma omp parallel for schedule(static) if (n * v > kParallelMin)
  for (int64_t r = 0; r < n; ++r) {
    T* g = grad + r * v;
    if (targets[r] == ignore_index) {
      std::fill(g, g + v, T(0));
      continue;
    }
    const T* x = logits + r * v;
    const T l = lse[r];
#pragma omp simd
    for (int64_t j = 0; j < v; ++j) g[j] = coef * exp_fast(x[j] - l);
    g[targets[r]] -= coef;
  }
}

template <typename T>
double kl_forward(const T* student, const T* teacher, int64_t n, int64_t v, T tau, T* lse_s, T* lse_t, T* row_kl) {
  const T inv = T(1) / tau;
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n * v > kParallelMin)
  for (int64_t r = 0; r < n; ++r) {
    const T *s = student + r * v, *t = teacher + r * v;
    // One pass over both rows: online logsumexp of s/τ and t/τ, plus the teacher-weighted
    // Σ e^{t/τ − m_t} (t − s), all rescaled whenever a running max grows.
    // KL = Σ p_t (t − s)/τ − lse_t + lse_s.
    T ms = -std::numeric_limits<T>::infinity(), mt = ms;
    double sum_s = 0, sum_t = 0, cross = 0;
    for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
      const int64_t c1 = std::min(v, c0 + kChunk);
      const T cms = max_of(s + c0, c1 - c0) * inv, cmt = max_of(t + c0, c1 - c0) * inv;
      if (cms > ms) {
        sum_s *= std::exp(static_cast<double>(ms) - static_cast<double>(cms));
        ms = cms;
      }
      if (cmt > mt) {
        const double rescale = std::exp(static_cast<double>(mt) - static_cast<double>(cmt));
        sum_t *= rescale;
        cross *= rescale;
        mt = cmt;
      }
      T cs = 0, ct = 0, cx = 0;
#pragma omp simd reduction(+ : cs, ct, cx)
      for (int64_t j = c0; j < c1; ++j) {
        const T et = exp_fast(t[j] * inv - mt);
        cs += exp_fast(s[j] * inv - ms);
        ct += et;
        cx += et * (t[j] - s[j]);
      }
      sum_s += cs;
      sum_t += ct;
      cross += cx;
    }
    const double ls = static_cast<double>(ms) + std::log(sum_s), lt = static_cast<double>(mt) + std::log(sum_t);
    const double kl = cross / sum_t * static_cast<double>(inv) - lt + ls;
    lse_s[r] = static_cast<T>(ls);
    lse_t[r] = static_cast<T>(lt);
    row_kl[r] = static_cast<T>(kl);
    total += kl;
  }
  return total;
}

template <typename T>
void kl_backward(const T* student, const T* teacher, const T* lse_s, const T* lse_t, const T* row_kl, int64_t n,
                 int64_t v, T tau, T coef, T* grad_student, T* grad_teacher) {
  const T inv = T(1) / tau;
#pragma omp parallel for schedule(static) if (n * v > kParallelMin)
  for (int64_t r = 0; r < n; ++r) {
    const T *s = student + r * v, *t = teacher + r * v;
    const T ls = lse_s[r], lt = lse_t[r], kl = row_kl[r];
    if (grad_student) {
      T* g = grad_student + r * v;
#pragma omp simd
      for (int64_t j = 0; j < v; ++j) g[j] = coef * (exp_fast(s[j] * inv - ls) - exp_fast(t[j] * inv - lt));
    }
    if (grad_teacher) {
      T* g = grad_teacher + r * v;
#pragma omp simd
      for (int64_t j = 0; j < v; ++j) {
        const T log_pt = t[j] * inv - lt, log_ps = s[j] * inv - ls;
        g[j] = coef * exp_fast(log_pt) * (log_pt - log_ps - kl);
      }
    }
  }
}

template <typename T>
double squared_error_sum(const T* a, const T* b, int64_t n) {
  double acc = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : acc) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    acc += e * e;
  }
  return acc;
}

template <typename T>
void squared_error_backward(const T* a, const T* b, int64_t n, T coef, T* grad_a, T* grad_b) {
#pragma omp parallel for simd schedule(static) if (parallel: n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T g = coef * (a[i] - b[i]);
    if (grad_a) grad_a[i] = g;
    if (grad_b) grad_b[i] = -g;
  }
}

// One row at a time in double: p, q and the divergence's gradient g = dD/dq, then the softmax Jacobian
// dD/dz_i = q_i (g_i − Σ_j q_j g_j). JSD: g_i = ½ log(q_i / m_i), m = (p + q) / 2 (the ±½ constants cancel);
// TVD: g_i = ½ sign(q_i − p_i).
template <typename T>
double bounded_divergence(const T* draft, const T* target, int64_t n, int64_t v, bool tvd, T* grad_rows) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n * v > kParallelMin)
  for (int64_t r = 0; r < n; ++r) {
    std::vector<double> p(v), q(v), g(v);
    auto softmax = [v](const T* z, std::vector<double>& out) {
      double mx = -INFINITY, sum = 0;
      for (int64_t i = 0; i < v; ++i) mx = std::max(mx, static_cast<double>(z[i]));
      for (int64_t i = 0; i < v; ++i) sum += out[i] = std::exp(static_cast<double>(z[i]) - mx);
      for (int64_t i = 0; i < v; ++i) out[i] /= sum;
    };
    softmax(target + r * v, p);
    softmax(draft + r * v, q);
    double value = 0, qg = 0;
    for (int64_t i = 0; i < v; ++i) {
      if (tvd) {
        value += 0.5 * std::abs(p[i] - q[i]);
        g[i] = p[i] > q[i] ? -0.5 : (p[i] < q[i] ? 0.5 : 0.0);
      } else {
        const double m = 0.5 * (p[i] + q[i]);
        if (p[i] > 0) value += 0.5 * p[i] * std::log(p[i] / m);
        if (q[i] > 0) value += 0.5 * q[i] * std::log(q[i] / m);
        g[i] = q[i] > 0 ? 0.5 * std::log(q[i] / m) : 0.0;
      }
      qg += q[i] * g[i];
    }
    total += value;
    for (int64_t i = 0; i < v; ++i) grad_rows[r * v + i] = static_cast<T>(q[i] * (g[i] - qg));
  }
  return total;
}

namespace {
template <typename T>
LossKernels<T> loss_table() {
  return {&cross_entropy_forward<T>, &cross_entropy_backward<T>, &kl_forward<T>,        &kl_backward<T>,
          &squared_error_sum<T>,     &squared_error_backward<T>, &bounded_divergence<T>};
}
}  // namespace

void fill_loss(Backend& b) {
  b.f32.loss = loss_table<float>();
  b.f64.loss = loss_table<double>();
}

}  // namespace linspec::kernels::cpu
