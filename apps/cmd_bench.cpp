// linspec bench gemm|train: GEMM throughput and the training-step benchmark (apps/bench_train_step.h).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/bench_train_step.h"
#include "apps/command.h"
#include "core/error.h"

namespace linspec::apps {
namespace {

struct BenchArgs {
  std::string what, precision = "fp32", json_out;
  int64_t layers = 30, batch = 4, seq = 256, steps = 3, warmup = 1, gemm_n = 2048;
  bool recompute = false;
} args;

void write_json(const nlohmann::json& j) {
  if (args.json_out.empty()) return;
  std::ofstream f(args.json_out);
  if (!f) throw_input_error(args.json_out, ": cannot open for writing (--json)");
  f << j.dump(2) << "\n";
}

int bench_gemm() {
  const auto results = bench::run_gemm_bench(args.gemm_n, std::max<int64_t>(args.steps, 1));
  nlohmann::json j = {{"bench", "gemm"}, {"threads", num_threads()}, {"results", nlohmann::json::array()}};
  std::printf("%-14s %8s %12s %10s\n", "kind", "n", "seconds", "GFLOP/s");
  for (const auto& r : results) {
    std::printf("%-14s %8lld %12.4f %10.1f\n", r.kind.c_str(), static_cast<long long>(r.n), r.seconds, r.gflops);
    j["results"].push_back({{"kind", r.kind}, {"n", r.n}, {"seconds", r.seconds}, {"gflops", r.gflops}});
  }
  write_json(j);
  return 0;
}

int bench_train() {
  bench::TrainBenchOptions o;
  if (args.precision != "fp32" && args.precision != "bf16")
    throw_input_error("--precision: expected fp32 or bf16, got '", args.precision, "'");
  o.precision = args.precision == "bf16" ? ops::MatmulPrecision::BF16 : ops::MatmulPrecision::F32;
  o.layers = args.layers, o.batch = args.batch, o.seq = args.seq, o.steps = args.steps, o.warmup = args.warmup;
  o.recompute = args.recompute;
  if (o.layers <= 0 || o.batch <= 0 || o.seq <= 0 || o.steps <= 0 || o.warmup < 0)
    throw_input_error("bench train: --layers, --batch, --seq and --steps must be positive, --warmup >= 0");
  const auto r = bench::run_train_bench(o);
  std::printf("train: %lld layers, batch %lld x seq %lld, %s, %lld threads, %.1fM params\n",
              static_cast<long long>(o.layers), static_cast<long long>(o.batch), static_cast<long long>(o.seq),
              bench::precision_name(o.precision), static_cast<long long>(r.threads), r.params / 1e6);
  std::printf("step %.3f s (forward %.3f, backward %.3f, optimizer %.3f)  %.1f tokens/s  peak %.2f GiB\n", r.step_s,
              r.forward_s, r.backward_s, r.optimizer_s, r.tokens_per_s, r.peak_bytes / 1073741824.0);
  std::printf("process CPU time %.3f s per step (%.2f cores busy on average)\n", r.cpu_s, r.cpu_s / r.step_s);
  std::printf("%-16s %10s %10s %7s\n", "op", "fwd s", "bwd s", "share");
  std::vector<std::pair<std::string, OpTimes>> rows(r.ops.begin(), r.ops.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second.forward_s + a.second.backward_s > b.second.forward_s + b.second.backward_s;
  });
  for (const auto& [name, t] : rows)
    std::printf("%-16s %10.4f %10.4f %6.1f%%\n", name.c_str(), t.forward_s, t.backward_s,
                100.0 * (t.forward_s + t.backward_s) / r.step_s);
  std::printf("%-16s %10s %10.4f %6.1f%%\n", "adamw", "", r.optimizer_s, 100.0 * r.optimizer_s / r.step_s);
  write_json(bench::to_json(r));
  return 0;
}

RegisterCommand reg(Command{"bench", "Benchmarks: gemm (GFLOP/s), train (tokens/s of a SmolLM2-shaped step)",
                            [](CLI::App& s) {
  s.add_option("what", args.what, "gemm | train")->required()->check(CLI::IsMember({"gemm", "train"}));
  s.add_option("--precision", args.precision, "train: matmul precision fp32 | bf16");
  s.add_option("--layers", args.layers, "train: decoder layers (SmolLM2 has 30)");
  s.add_option("--batch", args.batch, "train: sequences per step");
  s.add_option("--seq", args.seq, "train: tokens per sequence");
  s.add_option("--steps", args.steps, "measured steps (gemm: repetitions)");
  s.add_option("--warmup", args.warmup, "train: unmeasured steps first");
  s.add_flag("--recompute", args.recompute, "train: per-layer activation recomputation");
  s.add_option("--gemm-n", args.gemm_n, "gemm: matrix size n (n x n x n)");
  s.add_option("--json", args.json_out, "write the results as JSON here");
  return std::function<int()>([] { return args.what == "gemm" ? bench_gemm() : bench_train(); });
}});

}  // namespace
}  // namespace linspec::apps
