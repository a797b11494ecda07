// Naive quadratic references for the baseline linear attentions (attention/baselines/baseline_attention.h), in double precision:
// each preset's attention weights are written out as an explicit masked T×T matrix straight from docs/method.md §2
// (cosformer uses cos(π/2·(t−s)/M) directly, not the cos/sin expansion the kernels use). Test-only code.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/baselines/baseline_attention.h"

namespace linspec::testing {

struct RefInputs {
  int64_t B, Hq, Hkv, T, d;
  std::vector<double> q, k, v;                   // [B, Hq, T, d], [B, Hkv, T, d]
  std::vector<double> omega, w, b, mix, norm_w;  // empty when the preset has none
};

inline RefInputs ref_inputs(const BaselineAttentionParams& p, const Tensor& q, const Tensor& k, const Tensor& v) {
  RefInputs r;
  r.B = q.size(0), r.Hq = q.size(1), r.Hkv = k.size(1), r.T = q.size(2), r.d = q.size(3);
  r.q = q.to_vector<double>(), r.k = k.to_vector<double>(), r.v = v.to_vector<double>();
  if (p.omega.defined()) r.omega = p.omega.to_vector<double>();
  if (p.feature_w.defined()) r.w = p.feature_w.to_vector<double>();
  if (p.feature_b.defined()) r.b = p.feature_b.to_vector<double>();
  if (p.mix_logit.defined()) r.mix = p.mix_logit.to_vector<double>();
  if (p.norm_weight.defined()) r.norm_w = p.norm_weight.to_vector<double>();
  return r;
}

namespace ref_detail {
inline double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
inline std::vector<double> elu1(const double* x, int64_t d) {
  std::vector<double> f(d);
  for (int64_t i = 0; i < d; ++i) f[i] = x[i] > 0 ? x[i] + 1 : std::exp(x[i]);
  return f;
}
inline std::vector<double> relu(const double* x, int64_t d) {
  std::vector<double> f(d);
  for (int64_t i = 0; i < d; ++i) f[i] = std::max(0.0, x[i]);
  return f;
}
inline std::vector<double> softmax(std::vector<double> u) {
  const double mx = *std::max_element(u.begin(), u.end());
  double s = 0;
  for (double& x : u) s += (x = std::exp(x - mx));
  for (double& x : u) x /= s;
  return u;
}
// [softmax(xW+b), softmax(−(xW+b))] with head h's W [d, d] and b [d].
inline std::vector<double> hedgehog(const RefInputs& r, int64_t h, const double* x) {
  const int64_t d = r.d;
  std::vector<double> u(d), neg(d);
  for (int64_t j = 0; j < d; ++j) {
    u[j] = r.b[h * d + j];
    for (int64_t i = 0; i < d; ++i) u[j] += x[i] * r.w[(h * d + i) * d + j];
    neg[j] = -u[j];
  }
  std::vector<double> f = softmax(u), g = softmax(neg);
  f.insert(f.end(), g.begin(), g.end());
  return f;
}
// exp(ωx' − |x'|²/2 [− max ωx'])/√m, x' = d^{-1/4} x.
inline std::vector<double> performer(const RefInputs& r, const double* x, bool query) {
  const int64_t d = r.d, m = static_cast<int64_t>(r.omega.size()) / d;
  std::vector<double> xs(d), f(m);
  for (int64_t i = 0; i < d; ++i) xs[i] = x[i] * std::pow(double(d), -0.25);
  const double half = 0.5 * dot(xs.data(), xs.data(), d);
  for (int64_t i = 0; i < m; ++i) f[i] = dot(r.omega.data() + i * d, xs.data(), d);
  const double mx = query ? *std::max_element(f.begin(), f.end()) : 0.0;
  for (double& u : f) u = std::exp(u - half - mx) / std::sqrt(double(m));
  return f;
}
inline std::vector<double> unit(const double* x, int64_t d) {
  const double n = std::sqrt(dot(x, x, d) + 1e-12);
  std::vector<double> u(x, x + d);
  for (double& e : u) e /= n;
  return u;
}
}  // namespace ref_detail

// Output [B, Hq, T, d] of preset c on r.
inline std::vector<double> reference_attention(const BaselineAttentionConfig& c, const RefInputs& r) {
  using namespace ref_detail;
  const int64_t T = r.T, d = r.d, rep = r.Hq / r.Hkv;
  std::vector<double> out(r.B * r.Hq * T * d, 0.0);
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t h = 0; h < r.Hq; ++h) {
      const double* q = r.q.data() + (b * r.Hq + h) * T * d;
      const double* k = r.k.data() + (b * r.Hkv + h / rep) * T * d;
      const double* v = r.v.data() + (b * r.Hkv + h / rep) * T * d;
      std::vector<double> A(T * T, 0.0);  // the explicit masked attention matrix
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s <= t; ++s) {
          const double *qt = q + t * d, *ks = k + s * d;
          double a = 0;
          switch (c.preset) {
            case BaselinePreset::Elu:
            case BaselinePreset::Transnormer:
              a = dot(elu1(qt, d).data(), elu1(ks, d).data(), d);
              break;
            case BaselinePreset::Relu:
              a = dot(relu(qt, d).data(), relu(ks, d).data(), d);
              break;
            case BaselinePreset::Performer: {
              const auto fq = performer(r, qt, true), fk = performer(r, ks, false);
              a = dot(fq.data(), fk.data(), static_cast<int64_t>(fq.size()));
              break;
            }
            case BaselinePreset::Cosformer:
              a = dot(relu(qt, d).data(), relu(ks, d).data(), d) * std::cos(M_PI / 2 * double(t - s) / c.max_len);
              break;
            case BaselinePreset::Hedgehog:
              a = dot(hedgehog(r, h, qt).data(), hedgehog(r, h, ks).data(), 2 * d);
              break;
            case BaselinePreset::Yoso: {
              if (s / c.group != t / c.group) break;
              const double x = std::clamp(dot(unit(qt, d).data(), unit(ks, d).data(), d), -1 + 1e-6, 1 - 1e-6);
              a = std::pow(1 - std::acos(x) / M_PI, c.tau);
              break;
            }
            case BaselinePreset::Window:
              a = s > t - c.window ? std::exp(dot(qt, ks, d) / std::sqrt(double(d)))
                                   : 1 / (1 + std::exp(-r.mix[h])) *
                                         dot(hedgehog(r, h, qt).data(), hedgehog(r, h, ks).data(), 2 * d);
              break;
          }
          A[t * T + s] = a;
        }
      for (int64_t t = 0; t < T; ++t) {
        double* o = out.data() + ((b * r.Hq + h) * T + t) * d;
        double den = 0;
        for (int64_t s = 0; s <= t; ++s) {
          den += A[t * T + s];
          for (int64_t i = 0; i < d; ++i) o[i] += A[t * T + s] * v[s * d + i];
        }
        const bool no_den = c.preset == BaselinePreset::Transnormer || c.preset == BaselinePreset::Yoso;
        const double div = no_den ? 1.0 : den + (c.preset == BaselinePreset::Window ? 0.0 : c.eps);
        for (int64_t i = 0; i < d; ++i) o[i] /= div;
        if (c.preset == BaselinePreset::Transnormer) {
          const double rms = std::sqrt(dot(o, o, d) / d + c.norm_eps);
          for (int64_t i = 0; i < d; ++i) o[i] = o[i] / rms * (r.norm_w.empty() ? 1.0 : r.norm_w[h * d + i]);
        }
      }
    }
  return out;
}

}  // namespace linspec::testing
