// Shared glue between attention/baselines/baseline_attention.h and the raw kernels in kernels/baseline_attention.h: argument checks,
// dims and feature-map specs. Internal to attention/baselines/baseline_ops.cpp and baseline_decode.cpp.
#pragma once
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "attention/baselines/baseline_attention.h"
#include "core/ops/dispatch.h"

namespace linspec::baseline_attention_support {
namespace ka = kernels::baseline_attn;

// Sizes read off q [B, Hq, X, d] and k [B, Hkv, X, d].
struct Sizes {
  int64_t batch, q_heads, kv_heads, len, head_dim;
};

// Checks q [B, Hq, X, d] against k, v [B, Hkv, X, d] (same dtype, Hq % Hkv == 0).
inline Sizes check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  ops::detail::check_float(q, op, "q");
  ops::detail::check_float(k, op, "k");
  ops::detail::check_float(v, op, "v");
  ops::detail::check_same_dtype(q, k, op);
  ops::detail::check_same_dtype(q, v, op);
  LINSPEC_CHECK(q.dim() == 4 && k.dim() == 4 && k.shape() == v.shape(), op,
                ": expected q [B, Hq, T, d] and k, v [B, Hkv, T, d], got ", shape_str(q.shape()), ", ",
                shape_str(k.shape()), ", ", shape_str(v.shape()));
  const Sizes s{q.size(0), q.size(1), k.size(1), q.size(2), q.size(3)};
  LINSPEC_CHECK(k.size(0) == s.batch && s.kv_heads > 0 && s.q_heads % s.kv_heads == 0 && k.size(2) == s.len &&
                    k.size(3) == s.head_dim,
                op, ": q ", shape_str(q.shape()), " and k ", shape_str(k.shape()),
                " do not match (same B, T, d; GQA needs Hq % Hkv == 0)");
  return s;
}

inline bool has_window(const BaselineAttentionConfig& c) { return c.preset == BaselinePreset::Window; }
inline int64_t window_of(const BaselineAttentionConfig& c) { return has_window(c) ? c.window : 0; }

inline ka::FeatureMap feature_map(BaselinePreset p) {
  switch (p) {
    case BaselinePreset::Elu:
    case BaselinePreset::Transnormer:
      return ka::FeatureMap::EluPlusOne;
    case BaselinePreset::Relu:
      return ka::FeatureMap::Relu;
    case BaselinePreset::Performer:
      return ka::FeatureMap::Performer;
    case BaselinePreset::Cosformer:
      return ka::FeatureMap::Cosformer;
    case BaselinePreset::Hedgehog:
    case BaselinePreset::Window:
      return ka::FeatureMap::Hedgehog;
    case BaselinePreset::Yoso:
      break;
  }
  throw std::logic_error("kernel attention: yoso has no feature map");
}

inline bool uses_hedgehog(const BaselineAttentionConfig& c) { return feature_map(c.preset) == ka::FeatureMap::Hedgehog; }

// The preset's parameters in `dtype`, contiguous, with shapes checked against (Hq, d).
struct ParamsIn {
  Tensor omega, w, b, mix, norm_w;
};
inline ParamsIn params_in(const BaselineAttentionConfig& c, const BaselineAttentionParams& p, int64_t Hq, int64_t d,
                          DType dtype) {
  auto take = [&](const Tensor& t, const Shape& shape, const char* name) {
    LINSPEC_CHECK(t.defined(), "kernel attention (", baseline_preset_name(c.preset), "): parameter ", name,
                  " is missing");
    LINSPEC_CHECK(t.shape() == shape, "kernel attention: parameter ", name, " must be ", shape_str(shape), ", got ",
                  shape_str(t.shape()));
    LINSPEC_CHECK(t.dtype() == dtype, "kernel attention: parameter ", name, " has dtype ", dtype_name(t.dtype()),
                  " but q has ", dtype_name(dtype));
    return t.contiguous();
  };
  ParamsIn r;
  if (c.preset == BaselinePreset::Performer) r.omega = take(p.omega, {c.features, d}, "omega");
  if (c.preset != BaselinePreset::Yoso && uses_hedgehog(c)) {
    r.w = take(p.feature_w, {Hq, d, d}, "feature_w");
    r.b = take(p.feature_b, {Hq, d}, "feature_b");
  }
  if (has_window(c)) r.mix = take(p.mix_logit, {Hq}, "mix_logit");
  if (c.preset == BaselinePreset::Transnormer && c.norm_weight) r.norm_w = take(p.norm_weight, {Hq, d}, "norm_weight");
  return r;
}

template <typename T>
ka::FeatureSpec<T> feature_spec(const BaselineAttentionConfig& c, const ParamsIn& p, int64_t d, bool query_side) {
  ka::FeatureSpec<T> s;
  s.map = feature_map(c.preset);
  s.head_dim = d;
  s.features = ka::feature_count(s.map, d, c.features);
  s.query_side = query_side;
  s.omega = p.omega.defined() ? p.omega.device_data<T>() : nullptr;
  s.max_len = static_cast<double>(c.max_len);
  s.weight = p.w.defined() ? p.w.device_data<T>() : nullptr;
  s.bias = p.b.defined() ? p.b.device_data<T>() : nullptr;
  return s;
}

inline ka::HybridDims hybrid_dims(const BaselineAttentionConfig& c, const Sizes& s) {
  ka::HybridDims dm;
  dm.batch = s.batch, dm.q_heads = s.q_heads, dm.kv_heads = s.kv_heads, dm.seq = s.len, dm.head_dim = s.head_dim;
  dm.features = ka::feature_count(feature_map(c.preset), s.head_dim, c.features);
  dm.chunk = c.chunk;
  dm.window = window_of(c);
  dm.normalize = c.preset != BaselinePreset::Transnormer;
  dm.eps = c.eps;
  dm.scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  return dm;
}

inline ka::LocalDims local_dims(const BaselineAttentionConfig& c, const Sizes& s) {
  return {s.batch, s.q_heads, s.kv_heads, s.len, s.head_dim, c.group, c.tau};
}

// Fixed epsilon of yoso's q̂ = q / sqrt(|q|² + eps): zero vectors map to zero instead of NaN.
constexpr double kL2Eps = 1e-12;

inline std::vector<int64_t> positions(int64_t first, int64_t n) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), first);
  return p;
}

// Raw (non-differentiable) feature map of x [B, Hin, n, d] for Hq output heads, positions pos (size n).
inline Tensor features(const BaselineAttentionConfig& c, const ParamsIn& p, const Tensor& x, int64_t Hq,
                       const std::vector<int64_t>& pos, bool query_side) {
  const int64_t B = x.size(0), Hin = x.size(1), n = x.size(2), d = x.size(3);
  const int64_t F = ka::feature_count(feature_map(c.preset), d, c.features);
  Tensor xc = x.contiguous();
  Tensor f = Tensor::empty({B, Hq, n, F}, x.dtype(), x.device());
  ops::detail::dispatch_float(x.dtype(), "kernel attention features", [&](auto t) {
    using T = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T>(xc).baseline_attn.feature_forward, "feature_forward", xc)(
        feature_spec<T>(c, p, d, query_side), B, Hin, Hq, n, xc.device_data<T>(), pos.data(), f.device_data<T>());
  });
  return f;
}

// dst[b, h, dst_rows[j], :] = src[b, h, src_rows[j], :] for [B, H, ·, d] tensors (dst contiguous).
inline void copy_rows(const Tensor& src, const std::vector<int64_t>& src_rows, const Tensor& dst,
                      const std::vector<int64_t>& dst_rows) {
  LINSPEC_CHECK(src.dtype() == dst.dtype() && dst.is_contiguous() && src_rows.size() == dst_rows.size(),
                "kernel attention: bad row copy");
  const int64_t BH = src.size(0) * src.size(1), n = src.size(2), m = dst.size(2), d = src.size(3);
  Tensor sc = src.contiguous();
  const size_t es = dtype_size(src.dtype());
  const char* from = static_cast<const char*>(sc.raw_data());
  char* to = static_cast<char*>(dst.raw_data());
  for (int64_t bh = 0; bh < BH; ++bh)
    for (size_t j = 0; j < src_rows.size(); ++j)
      std::memcpy(to + (bh * m + dst_rows[j]) * d * es, from + (bh * n + src_rows[j]) * d * es, d * es);
}

// The given rows of x [B, H, n, d], in order, as a new [B, H, rows.size(), d] tensor.
inline Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  Tensor out =
      Tensor::empty({x.size(0), x.size(1), static_cast<int64_t>(rows.size()), x.size(3)}, x.dtype(), x.device());
  copy_rows(x, rows, out, positions(0, static_cast<int64_t>(rows.size())));
  return out;
}

}  // namespace linspec::baseline_attention_support
