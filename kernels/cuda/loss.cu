// Losses on the GPU (see kernels/loss.h). A row's logsumexp is computed in one pass: every thread keeps a running
// max and a sum rescaled when the max grows; the (max, sum) pairs are then merged across the block.
#include <cmath>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

constexpr int kRowThreads = 256;

// Running (max m, Σ exp(x − m)) of a stream of values; `extra` is a second sum rescaled with the same max (the
// teacher-weighted cross term of KL).
template <typename T>
struct OnlineSum {
  T m = neg_inf<T>();
  double sum = 0, extra = 0;

  __device__ void rescale_to(T m_new) {
    if (m_new > m) {
      const double f = m == neg_inf<T>() ? 0.0 : exp(static_cast<double>(m - m_new));
      sum *= f;
      extra *= f;
      m = m_new;
    }
  }
  __device__ void merge(const OnlineSum& o) {
    if (o.m == neg_inf<T>()) return;
    OnlineSum b = o;
    const T mm = max(m, b.m);
    rescale_to(mm);
    b.rescale_to(mm);
    sum += b.sum;
    extra += b.extra;
  }
  __device__ double log_sum() const { return static_cast<double>(m) + log(sum); }
};

template <typename T>
__device__ OnlineSum<T> shfl_xor(const OnlineSum<T>& a, int o) {
  OnlineSum<T> b;
  b.m = __shfl_xor_sync(0xffffffffu, a.m, o);
  b.sum = __shfl_xor_sync(0xffffffffu, a.sum, o);
  b.extra = __shfl_xor_sync(0xffffffffu, a.extra, o);
  return b;
}

// Merges every thread's state; all threads receive the block's.
template <typename T>
__device__ OnlineSum<T> block_merge(OnlineSum<T> a) {
  __shared__ T sm[32];
  __shared__ double ss[32], se[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) a.merge(shfl_xor(a, o));
  __syncthreads();  // a previous call's readers are done with the shared slots
  if (lane == 0) sm[warp] = a.m, ss[warp] = a.sum, se[warp] = a.extra;
  __syncthreads();
  OnlineSum<T> r;
  for (int w = 0; w < warps; ++w) {
    OnlineSum<T> b;
    b.m = sm[w], b.sum = ss[w], b.extra = se[w];
    r.merge(b);
  }
  return r;
}

template <typename T>
__global__ void ce_forward_kernel(const T* logits, const int32_t* targets, int64_t v, int32_t ignore_index, T* lse,
                                  double* row_loss, double* row_count) {
  const int64_t r = blockIdx.x;
  if (targets[r] == ignore_index) {
    if (threadIdx.x == 0) lse[r] = 0, row_loss[r] = 0, row_count[r] = 0;
    return;
  }
  const T* x = logits + r * v;
  OnlineSum<T> acc;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const T xv = x[j];
    acc.rescale_to(xv);
    acc.sum += static_cast<double>(exp(xv - acc.m));
  }
  acc = block_merge(acc);
  if (threadIdx.x == 0) {
    const T l = static_cast<T>(acc.log_sum());
    lse[r] = l;
    row_loss[r] = static_cast<double>(l) - static_cast<double>(x[targets[r]]);
    row_count[r] = 1;
  }
}

template <typename T>
__global__ void ce_backward_kernel(const T* logits, const int32_t* targets, const T* lse, int64_t v,
                                   int32_t ignore_index, T coef, T* grad) {
  const int64_t r = blockIdx.x;
  const int32_t target = targets[r];
  const T* x = logits + r * v;
  T* g = grad + r * v;
  const T l = lse[r];
  for (int64_t j = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < v;
       j += static_cast<int64_t>(gridDim.y) * blockDim.x) {
    if (target == ignore_index) {
      g[j] = 0;
      continue;
    }
    T val = coef * exp(x[j] - l);
    if (j == target) val -= coef;
    g[j] = val;
  }
}

template <typename T>
__global__ void kl_forward_kernel(const T* student, const T* teacher, int64_t v, T inv, T* lse_s, T* lse_t, T* row_kl,
                                  double* row_kl_d) {
  const int64_t r = blockIdx.x;
  const T *s = student + r * v, *t = teacher + r * v;
  OnlineSum<T> st, tt;  // tt.extra = Σ e^{t/τ − m_t} (t − s)
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const T sv = s[j] * inv, tv = t[j] * inv;
    st.rescale_to(sv);
    tt.rescale_to(tv);
    const double et = exp(tv - tt.m);
    st.sum += static_cast<double>(exp(sv - st.m));
    tt.sum += et;
    tt.extra += et * static_cast<double>(t[j] - s[j]);
  }
  st = block_merge(st);
  tt = block_merge(tt);
  if (threadIdx.x == 0) {
    const double ls = st.log_sum(), lt = tt.log_sum();
    const double kl = tt.extra / tt.sum * static_cast<double>(inv) - lt + ls;
    lse_s[r] = static_cast<T>(ls);
    lse_t[r] = static_cast<T>(lt);
    row_kl[r] = static_cast<T>(kl);
    row_kl_d[r] = kl;
  }
}

template <typename T>
__global__ void kl_backward_kernel(const T* student, const T* teacher, const T* lse_s, const T* lse_t,
                                   const T* row_kl, int64_t v, T inv, T coef, T* grad_student, T* grad_teacher) {
  const int64_t r = blockIdx.x;
  const T *s = student + r * v, *t = teacher + r * v;
  const T ls = lse_s[r], lt = lse_t[r], kl = row_kl[r];
  for (int64_t j = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < v;
       j += static_cast<int64_t>(gridDim.y) * blockDim.x) {
    const T log_ps = s[j] * inv - ls, log_pt = t[j] * inv - lt;
    if (grad_student) grad_student[r * v + j] = coef * (exp(log_ps) - exp(log_pt));
    if (grad_teacher) grad_teacher[r * v + j] = coef * exp(log_pt) * (log_pt - log_ps - kl);
  }
}

// One block per row: both logsumexps, then the divergence and Σ q·g (g = dD/dq) from one pass, then the gradient
// q (g − Σ q·g) from another (see kernels/cpu/loss.cpp for the formulas).
__device__ double divergence_term(double p, double q, bool tvd, double& g) {
  if (tvd) {
    g = p > q ? -0.5 : (p < q ? 0.5 : 0.0);
    return 0.5 * fabs(p - q);
  }
  const double m = 0.5 * (p + q);
  g = q > 0 ? 0.5 * log(q / m) : 0.0;
  return (p > 0 ? 0.5 * p * log(p / m) : 0.0) + (q > 0 ? 0.5 * q * log(q / m) : 0.0);
}

template <typename T>
__global__ void bounded_divergence_kernel(const T* draft, const T* target, int64_t v, bool tvd, T* grad,
                                          double* row_value) {
  const int64_t r = blockIdx.x;
  const T *z = draft + r * v, *t = target + r * v;
  OnlineSum<T> zs, ts;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    zs.rescale_to(z[j]);
    ts.rescale_to(t[j]);
    zs.sum += exp(static_cast<double>(z[j] - zs.m));
    ts.sum += exp(static_cast<double>(t[j] - ts.m));
  }
  const double lz = block_merge(zs).log_sum(), lt = block_merge(ts).log_sum();
  double value = 0, qg = 0, g = 0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const double q = exp(static_cast<double>(z[j]) - lz), p = exp(static_cast<double>(t[j]) - lt);
    value += divergence_term(p, q, tvd, g);
    qg += q * g;
  }
  value = block_sum(value);
  qg = block_sum(qg);
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const double q = exp(static_cast<double>(z[j]) - lz), p = exp(static_cast<double>(t[j]) - lt);
    divergence_term(p, q, tvd, g);
    grad[r * v + j] = static_cast<T>(q * (g - qg));
  }
  if (threadIdx.x == 0) row_value[r] = value;
}

// Grid for elementwise passes over [rows, v]: x = rows, y = column chunks.
dim3 row_grid(int64_t n, int64_t v) {
  const int64_t chunks = std::clamp<int64_t>((v + kRowThreads * 4 - 1) / (kRowThreads * 4), 1, 65535);
  return dim3(static_cast<unsigned>(n), static_cast<unsigned>(chunks));
}

struct Read {
  const double* x;
  __device__ double operator()(int64_t i) const { return x[i]; }
};

template <typename T>
struct SquaredError {
  const T *a, *b;
  __device__ double operator()(int64_t i) const {
    const double e = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    return e * e;
  }
};

template <typename T>
struct SquaredErrorGrad {
  const T *a, *b;
  T coef;
  T *ga, *gb;
  __device__ void operator()(int64_t i) const {
    const T g = coef * (a[i] - b[i]);
    if (ga) ga[i] = g;
    if (gb) gb[i] = -g;
  }
};

}  // namespace

template <typename T>
CrossEntropySums cross_entropy_forward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                                       int32_t ignore_index, T* lse) {
  if (n <= 0) return {};
  Scratch<double> row_loss(n), row_count(n);
  ce_forward_kernel<<<static_cast<unsigned>(n), kRowThreads, 0, stream()>>>(logits, targets, v, ignore_index, lse,
                                                                          row_loss.get(), row_count.get());
  check_launch("cross_entropy_forward");
  CrossEntropySums out;
  out.loss_sum = reduce_to_host(Read{row_loss.get()}, n, "cross_entropy_forward (sum)");
  out.count = static_cast<int64_t>(reduce_to_host(Read{row_count.get()}, n, "cross_entropy_forward (count)"));
  return out;
}

template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, int64_t n, int64_t v,
                            int32_t ignore_index, T coef, T* grad) {
  if (n <= 0 || v <= 0) return;
  ce_backward_kernel<<<row_grid(n, v), kRowThreads, 0, stream()>>>(logits, targets, lse, v, ignore_index, coef, grad);
  check_launch("cross_entropy_backward");
}

template <typename T>
double kl_forward(const T* student, const T* teacher, int64_t n, int64_t v, T tau, T* lse_s, T* lse_t, T* row_kl) {
  if (n <= 0) return 0;
  Scratch<double> kl(n);
  kl_forward_kernel<<<static_cast<unsigned>(n), kRowThreads, 0, stream()>>>(student, teacher, v, T(1) / tau, lse_s,
                                                                          lse_t, row_kl, kl.get());
  check_launch("kl_forward");
  return reduce_to_host(Read{kl.get()}, n, "kl_forward (sum)");
}

template <typename T>
void kl_backward(const T* student, const T* teacher, const T* lse_s, const T* lse_t, const T* row_kl, int64_t n,
                 int64_t v, T tau, T coef, T* grad_student, T* grad_teacher) {
  if (n <= 0 || v <= 0 || (!grad_student && !grad_teacher)) return;
  kl_backward_kernel<<<row_grid(n, v), kRowThreads, 0, stream()>>>(student, teacher, lse_s, lse_t, row_kl, v,
                                                                   T(1) / tau, coef, grad_student, grad_teacher);
  check_launch("kl_backward");
}

template <typename T>
double squared_error_sum(const T* a, const T* b, int64_t n) {
  if (n <= 0) return 0;
  return reduce_to_host(SquaredError<T>{a, b}, n, "squared_error_sum");
}

template <typename T>
void squared_error_backward(const T* a, const T* b, int64_t n, T coef, T* grad_a, T* grad_b) {
  for_each(n, SquaredErrorGrad<T>{a, b, coef, grad_a, grad_b}, "squared_error_backward");
}

template <typename T>
double bounded_divergence(const T* draft, const T* target, int64_t n, int64_t v, bool tvd, T* grad_rows) {
  if (n <= 0) return 0;
  Scratch<double> value(n);
  bounded_divergence_kernel<<<static_cast<unsigned>(n), kRowThreads, 0, stream()>>>(draft, target, v, tvd, grad_rows,
                                                                                  value.get());
  check_launch("bounded_divergence");
  return reduce_to_host(Read{value.get()}, n, "bounded_divergence (sum)");
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

}  // namespace linspec::kernels::cuda
