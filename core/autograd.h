// Reverse-mode autograd over a tape of coarse ops.
//
// Each differentiable op (core/ops.h) computes its forward with kernels/ and, when any input requires
// grad and grad mode is on, appends one closure to the current tape. backward() seeds d(loss)=1 and runs
// the tape in reverse; since entries are recorded in execution order, an op's output gradient is
// complete by the time its closure runs, so the closure consumes (and frees) it. Leaves (parameters)
// accumulate into .grad() across backward calls until zero_grad().
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace linspec {

struct AutogradMeta {
  Tensor grad;
  bool is_leaf = true;
  bool retain = false;  // keep a non-leaf's grad after its closure ran
  // .grad is a preallocated buffer whose contents are stale: the next accumulation overwrites it instead of adding
  // (gradient buckets start each step this way, so they need no zeroing pass).
  bool grad_stale = false;
};

class Tape {
 public:
  void record(std::function<void()> backward_fn) { entries_.push_back(std::move(backward_fn)); }
  size_t size() const { return entries_.size(); }
  // Runs every closure in reverse order and empties the tape (freeing saved activations).
  void run_backward();
  void clear() { entries_.clear(); }

 private:
  std::vector<std::function<void()>> entries_;
};

// The tape ops record onto (thread-local; a default tape exists per thread).
Tape& current_tape();

// Makes `tape` current for its lifetime (nested scopes restore the previous one).
class TapeScope {
 public:
  explicit TapeScope(Tape& tape);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* previous_;
};

bool grad_enabled();
// Disables recording for its lifetime (evaluation, optimizer updates, the teacher in distillation).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Backpropagates from a scalar through the current tape, then clears it.
void backward(const Tensor& loss);
// Same, seeding `output` with `grad_output` (any shape).
void backward(const Tensor& output, const Tensor& grad_output);

// ---- helpers for op implementations ----
// True when grad mode is on and any of the inputs requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
// Adds g into t's gradient (allocating it on first use). No-op when t does not require grad.
void accumulate_grad(const Tensor& t, const Tensor& g);
// Marks `out` as produced by an op and records `fn(grad_out)` to run during backward.
// `fn` is skipped when no gradient reached `out`.
void record_op(Tensor& out, std::function<void(Tensor grad_out)> fn);

// ---- activation checkpointing ----
using BlockFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;
// Runs `block` without keeping its activations; during backward re-runs it on the saved inputs and
// backpropagates through the recomputed graph. Parameters used inside receive their gradients as usual.
// `block` must be deterministic (draw random numbers from a counter-based stream it is given).
std::vector<Tensor> checkpoint(const BlockFn& block, const std::vector<Tensor>& inputs);

}  // namespace linspec
