// Wall-clock time per op kind, forward and backward, for benchmarks (perf is not available everywhere).
//
// profiled("gemm.mlp", [&] { return ops::linear(...); }) times the call, and when grad mode is on it also
// brackets the op's tape entries with two marker entries: the tape runs in reverse, so the marker recorded
// after the op starts the backward clock and the one recorded before stops it. Off (a null thread-local
// pointer) it costs one branch. Under activation checkpointing the recomputed forward is counted as forward.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "core/autograd.h"

namespace linspec {

struct OpTimes {
  double forward_s = 0, backward_s = 0;
  int64_t calls = 0;
};

class OpProfile {
 public:
  std::map<std::string, OpTimes>& times() { return times_; }
  const std::map<std::string, OpTimes>& times() const { return times_; }
  void clear() { times_.clear(); }

  // Makes `p` the profile of this thread while alive (nullptr: profiling off).
  class Scope {
   public:
    explicit Scope(OpProfile* p) : previous_(current()) { current() = p; }
    ~Scope() { current() = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    OpProfile* previous_;
  };
  static OpProfile*& current() {
    thread_local OpProfile* p = nullptr;
    return p;
  }

 private:
  std::map<std::string, OpTimes> times_;
};

inline double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename F>
auto profiled(const char* name, F&& f) {
  OpProfile* prof = OpProfile::current();
  if (!prof) return f();
  const bool taped = grad_enabled();
  // Shared between the two markers of this call: the backward start time.
  auto start = std::make_shared<double>(0.0);
  if (taped)
    current_tape().record([prof, name, start] { prof->times()[name].backward_s += seconds_now() - *start; });
  const double t0 = seconds_now();
  auto out = f();
  OpTimes& t = prof->times()[name];
  t.forward_s += seconds_now() - t0;
  ++t.calls;
  if (taped) current_tape().record([start] { *start = seconds_now(); });
  return out;
}

}  // namespace linspec
