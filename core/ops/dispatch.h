// Shared helpers for op implementations (not part of the public API): dtype dispatch, operand checks and the
// backend lookup every op does once (core/backend.h) before calling kernels of its operands' device.
#pragma once
#include "core/autograd.h"
#include "core/backend.h"
#include "core/gemm_observer.h"
#include "core/ops.h"

namespace linspec::ops::detail {

// Calls f(T{}) with T = float or double according to dtype.
template <typename F>
auto dispatch_float(DType dtype, const char* op, F&& f) {
  if (dtype == DType::F32) return f(float{});
  if (dtype == DType::F64) return f(double{});
  throw std::logic_error(std::string(op) + ": unsupported dtype " + dtype_name(dtype) + " (ops compute in f32 or f64)");
}

// The float kernels of the backend that holds t (resolved once per call; ops check their operands share a device
// with backend_of first).
template <typename T>
const kernels::FloatKernels<T>& float_kernels(const Tensor& t) {
  return backend(t.device()).template of<T>();
}

// A kernel from the table of t's device, or an error naming the kernel and the device when that backend lacks it.
template <typename Fn>
Fn kernel(Fn fn, const char* name, const Tensor& t) {
  return kernel(fn, name, backend(t.device()));
}

// c = op(a) · op(b) + beta · c on contiguous operands of the backend (c preallocated; beta 0 or 1), reported to the
// thread's GemmObserver as `role`: for fused ops that run their backward GEMMs themselves. Precision resolved.
void gemm_into(const kernels::GemmShape& s, const Tensor& a, const Tensor& b, Tensor& c, float beta,
               MatmulPrecision precision, GemmRole role);

// Index of the first id outside [0, vocab) other than `allowed`, or -1; checked on the ids' own device.
int64_t first_invalid_id(const Tensor& ids, int64_t vocab, int64_t allowed);

// True when host code may read t directly (it lives in CPU memory).
inline bool host_readable(const Tensor& t) { return t.device() == Device::CPU; }

inline void check_float(const Tensor& t, const char* op, const char* arg) {
  LINSPEC_CHECK(t.defined(), op, ": ", arg, " is undefined");
  LINSPEC_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": ", arg, " has dtype ",
                dtype_name(t.dtype()));
}

inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  LINSPEC_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch ", dtype_name(a.dtype()), " vs ", dtype_name(b.dtype()));
}

}  // namespace linspec::ops::detail
