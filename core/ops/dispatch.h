// Shared helpers for op implementations (not part of the public API).
#pragma once
#include "core/autograd.h"
#include "core/ops.h"

namespace linspec::ops::detail {

// Calls f(T{}) with T = float or double according to dtype.
template <typename F>
auto dispatch_float(DType dtype, const char* op, F&& f) {
  if (dtype == DType::F32) return f(float{});
  if (dtype == DType::F64) return f(double{});
  throw std::logic_error(std::string(op) + ": unsupported dtype " + dtype_name(dtype) + " (ops compute in f32 or f64)");
}

inline void check_cpu_float(const Tensor& t, const char* op, const char* arg) {
  LINSPEC_CHECK(t.defined(), op, ": ", arg, " is undefined");
  LINSPEC_CHECK(t.device() == Device::CPU, op, ": ", arg, " must be on the CPU for this kernel");
  LINSPEC_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": ", arg, " has dtype ", dtype_name(t.dtype()));
}

inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  LINSPEC_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch ", dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()));
}

}  // namespace linspec::ops::detail
