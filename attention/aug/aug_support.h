// Shared glue between attention/aug/aug_attention.h and the raw kernels (argument checks, dims, normalisation). Internal.
#pragma once
#include "attention/aug/aug_attention.h"
#include "core/ops/dispatch.h"

namespace linspec::aug_support {

inline kernels::AugBranches branches(const AugConfig& c) { return {c.use_local, c.use_global, c.use_conv}; }

inline kernels::AugDims dims(const AugConfig& c, int64_t B, int64_t Hq, int64_t Hkv, int64_t T, int64_t d) {
  return {B, Hq, Hkv, T, d, c.group_size, c.conv_taps, c.eps, c.global_mean};
}

// A λ parameter as the kernels read it: one element in the compute dtype on the operands' device (the kernel
// dereferences it, so the host never reads it back); undefined stays undefined, which the kernels take as 1.
inline Tensor lambda_operand(const Tensor& l, const char* name, const Tensor& like) {
  if (!l.defined()) return Tensor();
  LINSPEC_CHECK(l.numel() == 1, "aug attention: ", name, " must be a scalar, got ", shape_str(l.shape()));
  ops::detail::backend_of(name, {&l, &like});
  return l.detach().to(like.dtype()).contiguous();
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.device_data<T>() : nullptr;
}

// conv_w [Hq, C] in `dtype`, contiguous (undefined when the conv branch is off).
inline Tensor conv_weights(const AugConfig& c, const Tensor& w, int64_t Hq, DType dtype) {
  if (!c.use_conv) return Tensor();
  LINSPEC_CHECK(w.defined(), "aug attention: conv_w is required when the conv branch is on");
  LINSPEC_CHECK(w.shape() == (Shape{Hq, c.conv_taps}), "aug attention: conv_w must be [", Hq, ", ", c.conv_taps,
                "], got ", shape_str(w.shape()));
  return w.to(dtype).contiguous();
}

// Checks q [..., Hq, X, d] against k / v [..., Hkv, X, d] (same leading dims, Hq % Hkv == 0, same dtype).
inline void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, int64_t rank, const char* op) {
  ops::detail::check_float(q, op, "q");
  ops::detail::check_float(k, op, "k");
  ops::detail::check_float(v, op, "v");
  ops::detail::check_same_dtype(q, k, op);
  ops::detail::check_same_dtype(q, v, op);
  ops::detail::backend_of(op, {&q, &k, &v});
  LINSPEC_CHECK(q.dim() == rank && k.dim() == rank && k.shape() == v.shape(), op, ": expected q, k, v of rank ", rank,
                " with k and v alike, got ", shape_str(q.shape()), ", ", shape_str(k.shape()), ", ",
                shape_str(v.shape()));
  const int64_t Hq = q.size(1), Hkv = k.size(1);
  LINSPEC_CHECK(q.size(0) == k.size(0) && Hkv > 0 && Hq % Hkv == 0 && q.size(-1) == k.size(-1), op, ": q ",
                shape_str(q.shape()), " and k ", shape_str(k.shape()), " do not match (GQA needs Hq % Hkv == 0)");
  if (rank == 4) LINSPEC_CHECK(q.size(2) == k.size(2), op, ": q and k have different lengths");
}

// x̂ = x / sqrt(|x|² + eps) over the last dim; rinv (one per row) is filled when given.
inline Tensor normalize(const Tensor& x, double eps, Tensor* rinv = nullptr) {
  Tensor xc = x.contiguous();
  const int64_t d = xc.size(-1), rows = d ? xc.numel() / d : 0;
  Tensor xhat = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
  Tensor r = Tensor::empty({rows}, xc.dtype(), xc.device());
  ops::detail::dispatch_float(xc.dtype(), "aug attention normalize", [&](auto t) {
    using T = decltype(t);
    ops::detail::kernel(ops::detail::float_kernels<T>(xc).aug.l2_normalize_rows, "l2_normalize_rows", xc)(
        xc.device_data<T>(), xhat.device_data<T>(), r.device_data<T>(), rows, d, static_cast<T>(eps));
  });
  if (rinv) *rinv = r;
  return xhat;
}

}  // namespace linspec::aug_support
