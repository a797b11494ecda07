// Feature maps φ of the baseline linear attentions and the row normalisations they use, forward and backward.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/baseline_attention_common.h"
#include "kernels/backend.h"

namespace linspec::kernels::baseline_attn {
namespace {
using detail::axpy;
using detail::dot;

template <typename T>
T cosformer_angle(const FeatureSpec<T>& s, const int64_t* pos, int64_t row) {
  return static_cast<T>(M_PI / 2 * static_cast<double>(pos[row]) / s.max_len);
}

// softmax(sign · u) into p [d].
template <typename T>
void signed_softmax(const T* u, T sign, T* p, int64_t d) {
  T mx = sign * u[0];
  for (int64_t i = 1; i < d; ++i) mx = std::max(mx, sign * u[i]);
  T sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += (p[i] = std::exp(sign * u[i] - mx));
  for (int64_t i = 0; i < d; ++i) p[i] /= sum;
}

// Performer: u_i = ω_i·x' with x' = d^{-1/4} x; returns the index of max u (query side) and fills f.
template <typename T>
int64_t performer_row(const FeatureSpec<T>& s, const T* x, T* xs, T* f) {
  const int64_t d = s.head_dim, m = s.features;
  const T c = static_cast<T>(std::pow(static_cast<double>(d), -0.25));
  for (int64_t i = 0; i < d; ++i) xs[i] = c * x[i];
  const T half_sq = T(0.5) * dot(xs, xs, d);
  int64_t arg = 0;
  for (int64_t i = 0; i < m; ++i) {
    f[i] = dot(s.omega + i * d, xs, d);
    if (f[i] > f[arg]) arg = i;
  }
  const T shift = half_sq + (s.query_side ? f[arg] : T(0));
  const T norm = static_cast<T>(1.0 / std::sqrt(static_cast<double>(m)));
  for (int64_t i = 0; i < m; ++i) f[i] = std::exp(f[i] - shift) * norm;
  return arg;
}

// Per-row scratch for the maps that need it.
template <typename T>
struct RowScratch {
  std::vector<T> a, b, c;
  explicit RowScratch(int64_t n) : a(n), b(n), c(n) {}
};

template <typename T>
void forward_row(const FeatureSpec<T>& s, int64_t h, const T* x, const int64_t* pos, int64_t row, T* f,
                 RowScratch<T>& sc) {
  const int64_t d = s.head_dim;
  switch (s.map) {
    case FeatureMap::EluPlusOne:
      for (int64_t i = 0; i < d; ++i) f[i] = x[i] > 0 ? x[i] + T(1) : std::exp(x[i]);
      break;
    case FeatureMap::Relu:
      for (int64_t i = 0; i < d; ++i) f[i] = std::max(x[i], T(0));
      break;
    case FeatureMap::Performer:
      performer_row(s, x, sc.a.data(), f);
      break;
    case FeatureMap::Cosformer: {
      const T th = cosformer_angle(s, pos, row), c = std::cos(th), sn = std::sin(th);
      for (int64_t i = 0; i < d; ++i) {
        const T r = std::max(x[i], T(0));
        f[i] = r * c;
        f[d + i] = r * sn;
      }
      break;
    }
    case FeatureMap::Hedgehog: {
      T* u = sc.a.data();
      std::copy(s.bias + h * d, s.bias + (h + 1) * d, u);
      const T* Wh = s.weight + h * d * d;
      for (int64_t i = 0; i < d; ++i) axpy(x[i], Wh + i * d, u, d);
      signed_softmax(u, T(1), f, d);
      signed_softmax(u, T(-1), f + d, d);
      break;
    }
  }
}

// Accumulates this row's dx (and hedgehog dW, db for head h) from df.
template <typename T>
void backward_row(const FeatureSpec<T>& s, int64_t h, const T* x, const int64_t* pos, int64_t row, const T* df, T* dx,
                  T* dW, T* db, RowScratch<T>& sc) {
  const int64_t d = s.head_dim;
  switch (s.map) {
    case FeatureMap::EluPlusOne:
      for (int64_t i = 0; i < d; ++i) dx[i] += df[i] * (x[i] > 0 ? T(1) : std::exp(x[i]));
      break;
    case FeatureMap::Relu:
      for (int64_t i = 0; i < d; ++i) dx[i] += x[i] > 0 ? df[i] : T(0);
      break;
    case FeatureMap::Performer: {
      const int64_t m = s.features;
      T* xs = sc.a.data();
      std::vector<T>& f = sc.c;
      if (static_cast<int64_t>(f.size()) < m) f.resize(m);
      const int64_t arg = performer_row(s, x, xs, f.data());
      // f_i = exp(ω_i·x' − |x'|²/2 − [ω_*·x'])/√m:  ∂x' = Σ a_i ω_i − (Σ a_i)(x' + [ω_*]),  a_i = df_i f_i.
      T* gxs = sc.b.data();
      std::fill(gxs, gxs + d, T(0));
      T sum_a = 0;
      for (int64_t i = 0; i < m; ++i) {
        const T a = df[i] * f[i];
        sum_a += a;
        axpy(a, s.omega + i * d, gxs, d);
      }
      axpy(-sum_a, xs, gxs, d);
      if (s.query_side) axpy(-sum_a, s.omega + arg * d, gxs, d);
      const T c = static_cast<T>(std::pow(static_cast<double>(d), -0.25));
      axpy(c, gxs, dx, d);
      break;
    }
    case FeatureMap::Cosformer: {
      const T th = cosformer_angle(s, pos, row), c = std::cos(th), sn = std::sin(th);
      for (int64_t i = 0; i < d; ++i)
        if (x[i] > 0) dx[i] += df[i] * c + df[d + i] * sn;
      break;
    }
    case FeatureMap::Hedgehog: {
      T* u = sc.a.data();
      T* p = sc.b.data();
      T* du = sc.c.data();
      std::copy(s.bias + h * d, s.bias + (h + 1) * d, u);
      const T* Wh = s.weight + h * d * d;
      for (int64_t i = 0; i < d; ++i) axpy(x[i], Wh + i * d, u, d);
      // softmax Jacobian for each half: ∂u = ±p ⊙ (g − p·g)
      signed_softmax(u, T(1), p, d);
      T pg = dot(p, df, d);
      for (int64_t j = 0; j < d; ++j) du[j] = p[j] * (df[j] - pg);
      signed_softmax(u, T(-1), p, d);
      pg = dot(p, df + d, d);
      for (int64_t j = 0; j < d; ++j) du[j] -= p[j] * (df[d + j] - pg);
      for (int64_t i = 0; i < d; ++i) dx[i] += dot(Wh + i * d, du, d);
      if (dW)
        for (int64_t i = 0; i < d; ++i) axpy(x[i], du, dW + h * d * d + i * d, d);
      if (db) axpy(T(1), du, db + h * d, d);
      break;
    }
  }
}

}  // namespace

int64_t feature_count(FeatureMap map, int64_t head_dim, int64_t features) {
  switch (map) {
    case FeatureMap::EluPlusOne:
    case FeatureMap::Relu:
      return head_dim;
    case FeatureMap::Performer:
      return features;
    case FeatureMap::Cosformer:
    case FeatureMap::Hedgehog:
      return 2 * head_dim;
  }
  throw std::logic_error("feature_count: unknown map");
}

template <typename T>
void feature_forward(const FeatureSpec<T>& s, int64_t batch, int64_t heads_in, int64_t heads_out, int64_t rows,
                     const T* x, const int64_t* pos, T* f) {
  const int64_t d = s.head_dim, F = s.features, rep = heads_out / heads_in;
  const int64_t work = batch * heads_out * rows * (d + F) * d;
#pragma omp parallel for collapse(2) schedule(static) if (work > detail::kParallelMinWork)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads_out; ++h) {
      RowScratch<T> sc(d);
      const T* xh = x + (b * heads_in + h / rep) * rows * d;
      T* fh = f + (b * heads_out + h) * rows * F;
      for (int64_t r = 0; r < rows; ++r) forward_row(s, h, xh + r * d, pos, r, fh + r * F, sc);
    }
}

template <typename T>
void feature_backward(const FeatureSpec<T>& s, int64_t batch, int64_t heads_in, int64_t heads_out, int64_t rows,
                      const T* x, const int64_t* pos, const T* df, T* dx, T* dweight, T* dbias) {
  const int64_t d = s.head_dim, F = s.features, rep = heads_out / heads_in;
  std::fill(dx, dx + batch * heads_in * rows * d, T(0));
  const int64_t work = batch * heads_out * rows * (d + F) * d;
  // One thread per input head: it owns dx of that head and the parameters of the output heads reading it.
#pragma omp parallel for schedule(static) if (work > detail::kParallelMinWork)
  for (int64_t hi = 0; hi < heads_in; ++hi) {
    RowScratch<T> sc(std::max(d, F));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < rep; ++r) {
        const int64_t h = hi * rep + r;
        const T* xh = x + (b * heads_in + hi) * rows * d;
        T* dxh = dx + (b * heads_in + hi) * rows * d;
        const T* dfh = df + (b * heads_out + h) * rows * F;
        for (int64_t row = 0; row < rows; ++row)
          backward_row(s, h, xh + row * d, pos, row, dfh + row * F, dxh + row * d, dweight, dbias, sc);
      }
  }
}

template <typename T>
void l2_normalize(const T* x, T* xhat, int64_t rows, int64_t d, T eps) {
#pragma omp parallel for schedule(static) if (rows * d > detail::kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T inv = T(1) / std::sqrt(dot(x + r * d, x + r * d, d) + eps);
    for (int64_t i = 0; i < d; ++i) xhat[r * d + i] = x[r * d + i] * inv;
  }
}

template <typename T>
void l2_normalize_backward(const T* x, const T* dxhat, T* dx, int64_t rows, int64_t d, T eps) {
  // x̂ = x·ρ with ρ = (|x|² + eps)^{-1/2}:  ∂x = ρ (∂x̂ − x̂ (x̂·∂x̂)), exact for any eps.
#pragma omp parallel for schedule(static) if (rows * d > detail::kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    const T* g = dxhat + r * d;
    const T inv = T(1) / std::sqrt(dot(xr, xr, d) + eps);
    const T proj = dot(xr, g, d) * inv * inv;
    for (int64_t i = 0; i < d; ++i) dx[r * d + i] = inv * (g[i] - xr[i] * proj);
  }
}

template <typename T>
void rms_norm_heads(const T* x, const T* w, T* y, int64_t batch, int64_t heads, int64_t rows, int64_t d, T eps) {
#pragma omp parallel for collapse(2) schedule(static) if (batch * heads * rows * d > detail::kParallelMinWork)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t off = ((b * heads + h) * rows + r) * d;
        const T inv = T(1) / std::sqrt(dot(x + off, x + off, d) / T(d) + eps);
        for (int64_t i = 0; i < d; ++i) y[off + i] = x[off + i] * inv * (w ? w[h * d + i] : T(1));
      }
}

template <typename T>
void rms_norm_heads_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t batch, int64_t heads,
                             int64_t rows, int64_t d, T eps) {
#pragma omp parallel for schedule(static) if (batch * heads * rows * d > detail::kParallelMinWork)
  for (int64_t h = 0; h < heads; ++h) {
    std::vector<T> gw(d);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t off = ((b * heads + h) * rows + r) * d;
        const T* xr = x + off;
        const T* g = dy + off;
        const T inv = T(1) / std::sqrt(dot(xr, xr, d) / T(d) + eps);
        for (int64_t i = 0; i < d; ++i) gw[i] = g[i] * (w ? w[h * d + i] : T(1));
        const T c = dot(xr, gw.data(), d) * inv * inv * inv / T(d);
        for (int64_t i = 0; i < d; ++i) dx[off + i] = inv * gw[i] - c * xr[i];
        if (dw)
          for (int64_t i = 0; i < d; ++i) dw[h * d + i] += g[i] * xr[i] * inv;
      }
  }
}

namespace {
template <typename T>
void fill(BaselineAttentionKernels<T>& k) {
  k.feature_forward = &feature_forward<T>;
  k.feature_backward = &feature_backward<T>;
  k.l2_normalize = &l2_normalize<T>;
  k.l2_normalize_backward = &l2_normalize_backward<T>;
  k.rms_norm_heads = &rms_norm_heads<T>;
  k.rms_norm_heads_backward = &rms_norm_heads_backward<T>;
}
}  // namespace

namespace cpu {
void fill_baseline_attention_features(Backend& b) {
  fill(b.f32.baseline_attn);
  fill(b.f64.baseline_attn);
}
}  // namespace cpu

}  // namespace linspec::kernels::baseline_attn
