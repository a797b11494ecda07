// A hook on every GEMM the autograd ops run (core/ops/matmul.cpp: forward, and the dA / dB GEMMs of backward), for
// profiles and FLOP accounting: model/op_profile.h groups them by region and shape, and tests count them to prove
// which GEMMs a training step runs (a frozen weight gets no weight-gradient GEMM).
//
// Off (a null thread-local pointer) it costs one branch per GEMM. On, each GEMM is bracketed by
// device_synchronize, so an asynchronous backend's GEMM time is its own (at the price of the overlap it had).
#pragma once
#include "core/tensor.h"
#include "kernels/matmul.h"

namespace linspec {

// Which product of matmul() a GEMM is: its forward, or in backward the gradient of A (the activations, for
// linear()) or of B (the weight, for linear()).
enum class GemmRole { Forward, GradA, GradB };
inline const char* gemm_role_name(GemmRole r) {
  return r == GemmRole::Forward ? "forward" : r == GemmRole::GradA ? "grad_a" : "grad_b";
}

class GemmObserver {
 public:
  virtual ~GemmObserver() = default;
  // One GEMM of shape s (2·batch·m·n·k FLOPs) in `dtype` (F32, F64; `bf16` when the operands were rounded to
  // bf16), taking `seconds` of wall time on `device`.
  virtual void on_gemm(const kernels::GemmShape& s, GemmRole role, DType dtype, bool bf16, Device device,
                       double seconds) = 0;

  // The observer of this thread (nullptr: none).
  static GemmObserver*& current() {
    thread_local GemmObserver* p = nullptr;
    return p;
  }
  // Makes `o` current while alive.
  class Scope {
   public:
    explicit Scope(GemmObserver* o) : previous_(current()) { current() = o; }
    ~Scope() { current() = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    GemmObserver* previous_;
  };
};

inline double gemm_flops(const kernels::GemmShape& s) {
  return 2.0 * static_cast<double>(s.batch) * static_cast<double>(s.m) * static_cast<double>(s.n) *
         static_cast<double>(s.k);
}

}  // namespace linspec
