#include "trainer/step_profile.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/backend.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace linspec::trainer {
namespace {

// The op family of a profile region (or of a flop_count family: they share names).
std::string family_of(const std::string& region) {
  const std::string top = region.substr(0, region.find('/'));
  if (top == "teacher") return "teacher (forward)";
  if (top == "draft_heads") return "draft heads";
  if (top == "draft_sampling") return "draft model sampling";
  if (top == "gemm.qkv" || top == "gemm.o" || top == "gemm.mlp") return "projections (GEMM)";
  if (top == "attention" || top == "attention_transfer") return "attention";
  if (top == "gemm.lm_head" || top == "cross_entropy" || top == "kd") return "LM head + loss";
  if (top == "rmsnorm" || top == "swiglu" || top == "residual" || top == "layout" || top == "rope" ||
      top == "embedding")
    return "norms + elementwise";
  if (top.rfind("comm.", 0) == 0) return "communication";
  return "other regions";
}

double rate(double flops, double s) { return s > 0 ? flops / s * 1e-9 : 0.0; }

}  // namespace

std::vector<GemmRate> measure_gemm_rates(Device device, int64_t n, int64_t reps) {
  const auto& mm = backend(device).matmul;
  Philox rng(3);
  std::vector<float> host(static_cast<size_t>(n * n));
  for (auto& x : host) x = rng.uniform_f32() - 0.5f;
  const Tensor a = Tensor::from_vector(host, {n, n}).to(device), b = a.clone(), c = Tensor::empty({n, n}, DType::F32, device);
  const Tensor a16 = a.to(DType::BF16), b16 = b.to(DType::BF16);
  const kernels::GemmShape s{1, n, n, n, false, false, false};
  std::vector<GemmRate> out;
  auto measure = [&](const std::string& kind, auto&& call) {
    call();
    device_synchronize(device);
    // Best of at least `reps` runs and 0.3 s: a few 7 ms runs caught the cores mid frequency change and read
    // 213 to 320 GFLOP/s on the same machine, which made the ceiling fraction swing between runs.
    double best = 1e30, spent = 0;
    int64_t runs = 0;
    for (; runs < std::max<int64_t>(reps, 1) || spent < 0.3; ++runs) {
      const double t0 = seconds_now();
      call();
      device_synchronize(device);
      const double t = seconds_now() - t0;
      best = std::min(best, t), spent += t;
    }
    out.push_back({kind, n, runs, best, 2.0 * static_cast<double>(n) * n * n / best * 1e-9});
  };
  float* cp = const_cast<Tensor&>(c).device_data<float>();
  if (mm.gemm_f32) measure("f32", [&] { mm.gemm_f32(s, a.device_data<float>(), b.device_data<float>(), cp, 0.f); });
  if (mm.gemm_bf16)
    measure("bf16", [&] { mm.gemm_bf16(s, a16.device_data<uint16_t>(), b16.device_data<uint16_t>(), cp, 0.f); });
  if (mm.gemm_f32_via_bf16)
    measure("f32_via_bf16",
            [&] { mm.gemm_f32_via_bf16(s, a.device_data<float>(), b.device_data<float>(), cp, 0.f); });
  return out;
}

double gemm_ceiling_gflops(const std::vector<GemmRate>& rates, const std::string& precision) {
  double best = 0;
  for (const auto& r : rates)
    if (precision == "bf16" ? (r.kind == "bf16" || r.kind == "f32_via_bf16") : r.kind == "f32")
      best = std::max(best, r.gflops);
  return best;
}

std::vector<FamilyRow> profile_families(const StepProfileInput& in) {
  std::map<std::string, FamilyRow> rows;
  double attributed = 0, allgather = 0;
  if (in.profile)
    for (const auto& [region, t] : in.profile->times()) {
      FamilyRow& r = rows[family_of(region)];
      r.seconds += t.forward_s + t.backward_s;
      r.gemm_flops += t.gemm_forward_flops + t.gemm_backward_flops;
      attributed += t.forward_s + t.backward_s;
      if (region == "comm.param_allgather") allgather += t.forward_s + t.backward_s;
    }
  const double mb = static_cast<double>(in.micro_batches);
  for (const auto& [name, f] : in.flops.families) rows[family_of(name)].model_flops += f.total() * mb;
  rows["optimizer"].seconds += std::max(0.0, in.optimizer_s - allgather);
  attributed += std::max(0.0, in.optimizer_s - allgather);
  rows["unattributed (autograd glue, unprofiled ops)"].seconds = std::max(0.0, in.step_s - attributed);
  std::vector<FamilyRow> out;
  for (auto& [name, r] : rows) {
    r.family = name;
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const FamilyRow& a, const FamilyRow& b) { return a.seconds > b.seconds; });
  return out;
}

void print_flop_summary(std::ostream& os, const StepProfileInput& in) {
  const double mb = static_cast<double>(in.micro_batches);
  const double step_flops = in.flops.total() * mb, gemm = in.flops.gemm_total() * mb;
  const double achieved = rate(step_flops, in.step_s);
  char line[512];
  int len = std::snprintf(line, sizeof line,
                          "FLOPs (this rank): %.3f GFLOP/token, %.1f GFLOP/step (%.0f%% in GEMMs); achieved %.1f GFLOP/s",
                          in.flops.per_token() * 1e-9, step_flops * 1e-9, 100.0 * gemm / std::max(step_flops, 1.0),
                          achieved);
  if (in.ceiling_gflops > 0 && len > 0)
    std::snprintf(line + len, sizeof line - static_cast<size_t>(len),
                  " = %.1f%% of the %s GEMM ceiling (%.1f GFLOP/s; at the ceiling: %.0f tokens/s)",
                  100.0 * achieved / in.ceiling_gflops, in.precision.c_str(), in.ceiling_gflops,
                  in.ceiling_gflops * 1e9 / std::max(in.flops.per_token(), 1.0));
  os << line << "\n";
  for (const auto& n : in.flops.not_counted) os << "  (not in the FLOP count: " << n << ")\n";
}

void print_step_profile(std::ostream& os, const StepProfileInput& in, bool detailed, size_t max_shapes) {
  const double ceiling = in.ceiling_gflops;
  auto pct = [&](double gflops) { return ceiling > 0 ? 100.0 * gflops / ceiling : 0.0; };
  os << "per op family (s per step; GFLOP/s from the measured GEMMs, else from the FLOP model):\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-46s %9s %6s %10s %10s %9s %6s\n", "family", "s", "share", "GEMM GFLOP",
                "model GFLOP", "GFLOP/s", "%ceil");
  os << line;
  for (const FamilyRow& r : profile_families(in)) {
    const double flops = r.gemm_flops > 0 ? r.gemm_flops : r.model_flops;
    const double g = rate(flops, r.seconds);
    std::snprintf(line, sizeof line, "  %-46s %9.4f %5.1f%% %10.2f %10.2f %9.1f %5.1f%%\n", r.family.c_str(), r.seconds,
                  100.0 * r.seconds / std::max(in.step_s, 1e-12), r.gemm_flops * 1e-9, r.model_flops * 1e-9, g, pct(g));
    os << line;
  }
  if (!in.profile || !detailed) return;
  os << "per region (s per step, forward / backward; GEMM GFLOP/s of the GEMMs run in the region):\n";
  std::snprintf(line, sizeof line, "  %-30s %9s %9s %7s %10s %9s\n", "region", "fwd s", "bwd s", "calls", "GEMM GFLOP",
                "GFLOP/s");
  os << line;
  std::vector<std::pair<std::string, OpTimes>> regions(in.profile->times().begin(), in.profile->times().end());
  std::sort(regions.begin(), regions.end(), [](const auto& a, const auto& b) {
    return a.second.forward_s + a.second.backward_s > b.second.forward_s + b.second.backward_s;
  });
  for (const auto& [name, t] : regions) {
    const double gf = t.gemm_forward_flops + t.gemm_backward_flops, gs = t.gemm_forward_s + t.gemm_backward_s;
    std::snprintf(line, sizeof line, "  %-30s %9.4f %9.4f %7lld %10.2f %9.1f\n", name.c_str(), t.forward_s, t.backward_s,
                  static_cast<long long>(t.calls), gf * 1e-9, rate(gf, gs));
    os << line;
  }
  // GEMMs by shape and role, summed over regions.
  struct Agg {
    GemmTimes t;
    std::string regions;
  };
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int, bool>, Agg> shapes;
  for (const auto& [k, g] : in.profile->gemms()) {
    Agg& a = shapes[{k.batch, k.m, k.n, k.k, static_cast<int>(k.role), k.bf16}];
    a.t.calls += g.calls, a.t.flops += g.flops, a.t.seconds += g.seconds;
    if (a.regions.find(k.region) == std::string::npos) a.regions += (a.regions.empty() ? "" : ",") + k.region;
  }
  std::vector<std::pair<std::string, Agg>> rows;
  for (const auto& [k, a] : shapes) {
    const auto [b, m, n, kk, role, bf16] = k;
    std::snprintf(line, sizeof line, "%s%lldx%lldx%lld %s%s", b > 1 ? (std::to_string(b) + "·").c_str() : "",
                  static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(kk),
                  gemm_role_name(static_cast<GemmRole>(role)), bf16 ? " bf16" : "");
    rows.emplace_back(line, a);
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.t.seconds > b.second.t.seconds; });
  os << "GEMMs by shape (M×N×K role; s per step), slowest first:\n";
  std::snprintf(line, sizeof line, "  %-34s %6s %9s %9s %9s %6s  %s\n", "shape", "calls", "GFLOP", "s", "GFLOP/s", "%ceil",
                "regions");
  os << line;
  for (size_t i = 0; i < rows.size() && i < max_shapes; ++i) {
    const auto& [name, a] = rows[i];
    const double g = rate(a.t.flops, a.t.seconds);
    std::snprintf(line, sizeof line, "  %-34s %6lld %9.3f %9.4f %9.1f %5.1f%%  %s\n", name.c_str(),
                  static_cast<long long>(a.t.calls), a.t.flops * 1e-9, a.t.seconds, g, pct(g), a.regions.c_str());
    os << line;
  }
  if (rows.size() > max_shapes) os << "  (" << rows.size() - max_shapes << " more shapes in the JSON)\n";
}

nlohmann::json step_profile_json(const StepProfileInput& in) {
  const double mb = static_cast<double>(in.micro_batches);
  nlohmann::json j;
  j["ceiling_gflops"] = in.ceiling_gflops;
  j["precision"] = in.precision;
  j["flops_per_token"] = in.flops.per_token();
  j["flops_per_step"] = in.flops.total() * mb;
  j["gemm_flops_per_step"] = in.flops.gemm_total() * mb;
  const double achieved = rate(in.flops.total() * mb, in.step_s);
  j["achieved_gflops"] = achieved;
  j["fraction_of_ceiling"] = in.ceiling_gflops > 0 ? achieved / in.ceiling_gflops : 0.0;
  j["not_counted"] = in.flops.not_counted;
  nlohmann::json fam = nlohmann::json::object();
  for (const auto& [name, f] : in.flops.families)
    fam[name] = {{"gemm_forward", f.gemm_forward * mb}, {"gemm_backward", f.gemm_backward * mb},
                 {"other_forward", f.other_forward * mb}, {"other_backward", f.other_backward * mb}};
  j["model_flops_per_step"] = fam;
  nlohmann::json families = nlohmann::json::array();
  for (const FamilyRow& r : profile_families(in))
    families.push_back({{"family", r.family}, {"seconds", r.seconds}, {"gemm_flops", r.gemm_flops},
                        {"model_flops", r.model_flops}});
  j["families"] = families;
  if (in.profile) {
    nlohmann::json gemms = nlohmann::json::array();
    for (const auto& [k, g] : in.profile->gemms())
      gemms.push_back({{"region", k.region}, {"role", gemm_role_name(k.role)}, {"batch", k.batch}, {"m", k.m},
                       {"n", k.n}, {"k", k.k}, {"bf16", k.bf16}, {"calls", g.calls}, {"flops", g.flops},
                       {"seconds", g.seconds}});
    j["gemms"] = gemms;
  }
  return j;
}

}  // namespace linspec::trainer
