// Wall-clock time per op region, forward and backward, and the GEMMs each region runs, for `bench train --profile`
// and `train`'s log.profile_every (perf is not available everywhere).
//
// profiled("gemm.mlp", [&] { return ops::linear(...); }) times the call, and when grad mode is on it also
// brackets the op's tape entries with two marker entries: the tape runs in reverse, so the marker recorded
// after the op starts the backward clock and the one recorded before stops it. Regions nest: an inner region is
// named "<outer>/<inner>" ("teacher/gemm.mlp") and its time is not counted again in the outer one, so the regions'
// times add up to at most the step. Under activation checkpointing the recomputed forward is counted as forward.
//
// While a profile is installed it is also the thread's GemmObserver (core/gemm_observer.h): every GEMM is added to
// the innermost region it ran in, and to a table by (region, role, shape). Off (a null thread-local pointer)
// profiling costs one branch per region and per GEMM.
#pragma once
#include <chrono>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/autograd.h"
#include "core/gemm_observer.h"

namespace linspec {

struct OpTimes {
  double forward_s = 0, backward_s = 0;  // this region's own time (nested regions excluded)
  int64_t calls = 0;                     // forward calls
  int64_t taped_calls = 0;               // of those, calls made with grad mode on (they recorded tape markers)
  double gemm_forward_flops = 0, gemm_backward_flops = 0;  // GEMMs run directly in this region
  double gemm_forward_s = 0, gemm_backward_s = 0;
};

// One row of the GEMM table: a region, the GEMM's role and its shape.
struct GemmKey {
  std::string region;
  GemmRole role = GemmRole::Forward;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool bf16 = false;
  bool operator<(const GemmKey& o) const {
    return std::tie(region, role, batch, m, n, k, bf16) < std::tie(o.region, o.role, o.batch, o.m, o.n, o.k, o.bf16);
  }
};
struct GemmTimes {
  int64_t calls = 0;
  double flops = 0, seconds = 0;
};

inline double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class OpProfile : public GemmObserver {
 public:
  std::map<std::string, OpTimes>& times() { return times_; }
  const std::map<std::string, OpTimes>& times() const { return times_; }
  const std::map<GemmKey, GemmTimes>& gemms() const { return gemms_; }
  void clear();
  // Divides every time, FLOP and call count by n (a per-step average over n steps).
  void scale(double n);
  // Forward milliseconds of every region per one of n passes (0 for all when n <= 0).
  std::map<std::string, double> forward_ms_per(double n) const;

  // Makes `p` the profile (and GEMM observer) of this thread while alive (nullptr: profiling off).
  class Scope {
   public:
    explicit Scope(OpProfile* p) : previous_(current()), gemms_(p) { current() = p; }
    ~Scope() { current() = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    OpProfile* previous_;
    GemmObserver::Scope gemms_;
  };
  static OpProfile*& current() {
    thread_local OpProfile* p = nullptr;
    return p;
  }

  // Region bookkeeping for profiled() and profiled_phase(): enter returns the region's full name.
  std::string enter(const std::string& name, bool backward, bool nest = true);
  void leave();

  void on_gemm(const kernels::GemmShape& s, GemmRole role, DType dtype, bool bf16, Device device,
               double seconds) override;

 private:
  struct Frame {
    std::string key;
    bool backward;
    double t0, child_s;
  };
  std::map<std::string, OpTimes> times_;
  std::map<GemmKey, GemmTimes> gemms_;
  std::vector<Frame> stack_;
};

template <typename F>
auto profiled(const char* name, F&& f) {
  OpProfile* prof = OpProfile::current();
  if (!prof) return f();
  const bool taped = grad_enabled();
  const std::string key = prof->enter(name, false);
  // Recorded before the op's entries, so it runs after them in backward: closes the backward region.
  if (taped) current_tape().record([prof] { prof->leave(); });
  struct Leave {
    OpProfile* p;
    ~Leave() { p->leave(); }
  };
  auto out = [&] {
    Leave leave{prof};
    return f();
  }();
  OpTimes& t = prof->times()[key];
  ++t.calls;
  if (taped) {
    ++t.taped_calls;
    current_tape().record([prof, key] { prof->enter(key, true, false); });  // runs first: opens it
  }
  return out;
}

// Times f() as a region `name` of the given phase, without tape markers (work that runs at a known phase: the
// gradient all-reduce inside backward).
template <typename F>
void profiled_phase(const char* name, bool backward, F&& f) {
  OpProfile* prof = OpProfile::current();
  if (!prof) return f();
  prof->enter(name, backward);
  struct Leave {
    OpProfile* p;
    ~Leave() { p->leave(); }
  } leave{prof};
  f();
}

}  // namespace linspec
