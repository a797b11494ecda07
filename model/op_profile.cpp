#include "model/op_profile.h"

namespace linspec {

void OpProfile::clear() {
  times_.clear();
  gemms_.clear();
  stack_.clear();
}

std::map<std::string, double> OpProfile::forward_ms_per(double n) const {
  std::map<std::string, double> ms;
  for (const auto& [name, t] : times_) ms[name] = n > 0 ? 1e3 * t.forward_s / n : 0.0;
  return ms;
}

void OpProfile::scale(double n) {
  if (n <= 0) return;
  for (auto& [name, t] : times_) {
    t.forward_s /= n, t.backward_s /= n, t.gemm_forward_flops /= n, t.gemm_backward_flops /= n;
    t.gemm_forward_s /= n, t.gemm_backward_s /= n;
    t.calls = static_cast<int64_t>(static_cast<double>(t.calls) / n + 0.5);
    t.taped_calls = static_cast<int64_t>(static_cast<double>(t.taped_calls) / n + 0.5);
  }
  for (auto& [key, g] : gemms_) {
    g.flops /= n, g.seconds /= n;
    g.calls = static_cast<int64_t>(static_cast<double>(g.calls) / n + 0.5);
  }
}

std::string OpProfile::enter(const std::string& name, bool backward, bool nest) {
  std::string key = nest && !stack_.empty() ? stack_.back().key + "/" + name : name;
  stack_.push_back({key, backward, seconds_now(), 0.0});
  return key;
}

void OpProfile::leave() {
  if (stack_.empty()) return;  // a tape that was cleared half-way (an exception during backward)
  const Frame f = stack_.back();
  stack_.pop_back();
  const double elapsed = seconds_now() - f.t0;
  OpTimes& t = times_[f.key];
  (f.backward ? t.backward_s : t.forward_s) += elapsed - f.child_s;
  if (!stack_.empty()) stack_.back().child_s += elapsed;
}

void OpProfile::on_gemm(const kernels::GemmShape& s, GemmRole role, DType, bool bf16, Device, double seconds) {
  const std::string region = stack_.empty() ? "(outside regions)" : stack_.back().key;
  const double flops = gemm_flops(s);
  OpTimes& t = times_[region];
  if (role == GemmRole::Forward) t.gemm_forward_flops += flops, t.gemm_forward_s += seconds;
  else t.gemm_backward_flops += flops, t.gemm_backward_s += seconds;
  GemmTimes& g = gemms_[GemmKey{region, role, s.batch, s.m, s.n, s.k, bf16}];
  ++g.calls, g.flops += flops, g.seconds += seconds;
}

}  // namespace linspec
