// linspec bench gemm|train|decode: GEMM throughput, the training step (trainer/train_bench.h) of an experiment
// config or of the SmolLM2-shaped synthetic default, and a checkpoint's decode / tree-verification cost on this
// machine (serve/decode_cost.h; cached for `--tree auto`).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#include "apps/command.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/cpu/instruction_peak.h"
#include "model/draft_heads.h"
#include "serve/decode_cost.h"
#include "serve/model_loader.h"
#include "serve/report.h"
#include "serve/speculative_loader.h"
#include "trainer/comm.h"
#include "trainer/stages.h"
#include "trainer/train_bench.h"

namespace linspec::apps {
namespace {

struct BenchArgs {
  std::string what, config, stage, precision = "fp32", json_out, device = "auto", checkpoint, weights = "f32",
              draft_weights = "int8";
  std::vector<std::string> overrides;
  int64_t layers = 30, batch = 4, seq = 256, steps = 3, warmup = 1, gemm_n = 0;  // gemm_n 0: 2048 (gemm), 1024 (train)
  bool recompute = false, profile = false;
  bool shape_flags = false;  // --layers/--batch/--seq/--precision/--recompute given
} args;

void write_json(const nlohmann::json& j) {
  if (args.json_out.empty()) return;
  std::ofstream f(args.json_out);
  if (!f) throw_input_error(args.json_out, ": cannot open for writing (--json)");
  f << j.dump(2) << "\n";
}

int bench_gemm() {
  const Device device = device_flag(args.device);  // auto: CUDA when built and a GPU is visible
  const auto results = trainer::measure_gemm_rates(device, args.gemm_n > 0 ? args.gemm_n : 2048, std::max<int64_t>(args.steps, 1));
  nlohmann::json j = {{"bench", "gemm"}, {"device", device_name(device)}, {"threads", num_threads()},
                      {"results", nlohmann::json::array()}};
  std::printf("%-14s %8s %12s %10s\n", "kind", "n", "seconds", "GFLOP/s");
  for (const auto& r : results) {
    std::printf("%-14s %8lld %12.4f %10.1f\n", r.kind.c_str(), static_cast<long long>(r.n), r.seconds, r.gflops);
    j["results"].push_back({{"kind", r.kind}, {"n", r.n}, {"seconds", r.seconds}, {"gflops", r.gflops}});
  }
  // The physical limit beside the GEMMs: what the vector units issue with nothing else in the way. (A CUDA device
  // reports its GEMMs only.)
  if (device == Device::CPU) {
    const auto peaks = kernels::cpu::measure_instruction_peaks();
    j["instruction_peaks"] = nlohmann::json::array();
    if (!peaks.empty()) std::printf("\n%-14s %12s %10s   (all %d threads, 12 independent accumulators each)\n", "peak",
                                    "instr/ns", "GFLOP/s", num_threads());
    for (const auto& p : peaks) {
      std::printf("%-14s %12.2f %10.1f\n", p.kind.c_str(), p.per_ns, p.gflops);
      j["instruction_peaks"].push_back({{"kind", p.kind},
                                        {"instructions_per_ns", p.per_ns},
                                        {"gflops", p.gflops},
                                        {"flops_per_instruction", p.flops_per_instr}});
    }
    // Each GEMM kind against the instruction it runs on (oneDNN: f32 FMAs; bf16 dot products where the CPU has them).
    auto peak_of = [&](const std::string& kind) {
      for (const auto& p : peaks)
        if (p.kind == kind) return p.gflops;
      return 0.0;
    };
    for (const auto& r : results) {
      const double peak = r.kind == "f32" ? peak_of("f32_fma") : peak_of("bf16_dot");
      if (peak > 0) std::printf("%-14s at %.0f%% of the %s peak\n", r.kind.c_str(), 100.0 * r.gflops / peak,
                                r.kind == "f32" ? "f32_fma" : "bf16_dot");
    }
  }
  write_json(j);
  return 0;
}

// The stage --stage names (a file without stages: is its only stage).
trainer::ExperimentConfig config_stage(const std::vector<trainer::TrainingStage>& stages) {
  std::string names;
  for (const auto& st : stages) {
    if (st.name == args.stage) return st.config;
    names += (names.empty() ? "" : ", ") + st.name;
  }
  if (args.stage.empty() && stages.size() == 1) return stages[0].config;
  throw_input_error(args.config, ": --stage ", args.stage.empty() ? "is needed" : "'" + args.stage + "' is not a stage",
                    " (its stages: ", names.empty() ? "none" : names, ")");
}

int bench_train() {
  if (args.steps <= 0 || args.warmup < 0) throw_input_error("bench train: --steps must be positive, --warmup >= 0");
  std::unique_ptr<trainer::Communicator> comm = trainer::make_communicator("mpi"), grads;
  std::optional<trainer::ExperimentConfig> cfg;
  std::optional<trainer::TrainSetup> setup;
  if (!args.config.empty()) {
    if (args.shape_flags)
      throw_input_error("bench train ", args.config,
                        ": --layers, --batch, --seq, --precision and --recompute shape "
                        "the synthetic default only; change the config with --set (e.g. --set train.micro_batch=4)");
    std::vector<std::string> overrides = args.overrides;
    if (args.device != "auto") overrides.push_back("train.device=" + args.device);  // --device wins over the file
    cfg = config_stage(trainer::load_training_stages(args.config, overrides));
    if (cfg->train.threads > 0) set_num_threads(cfg->train.threads);
    const Device device = trainer::training_device(*cfg);
    grads = trainer::make_communicator(cfg->distributed.backend, device);
    trainer::resolve_auto_precision(*cfg, device, comm.get(), std::cerr);
    setup.emplace(trainer::build_training(*cfg, nullptr, std::cerr, device));
  } else {
    if (!args.overrides.empty()) throw_input_error("bench train: --set needs an experiment config (CONFIG.yaml)");
    if (args.precision != "fp32" && args.precision != "bf16")
      throw_input_error("--precision: expected fp32 or bf16, got '", args.precision, "'");
    if (args.layers <= 0 || args.batch <= 0 || args.seq <= 0)
      throw_input_error("bench train: --layers, --batch and --seq must be positive");
    trainer::SyntheticTrainShape shape;
    shape.layers = args.layers, shape.batch = args.batch, shape.seq = args.seq;
    shape.precision = args.precision, shape.recompute = args.recompute;
    cfg = trainer::synthetic_train_config(shape);
    cfg->train.device = args.device;
    const Device device = trainer::training_device(*cfg);
    grads = trainer::make_communicator("auto", device);
    setup.emplace(trainer::synthetic_training_setup(shape, device));
  }
  auto r = trainer::run_train_bench(*cfg, *setup, *comm, *grads, args.steps, args.warmup);
  // The ceiling: this backend's GEMM rate at the step's precision, measured now (the same machine state).
  r.gemm_rates = trainer::measure_gemm_rates(setup->model->rope_inv_freq().device(), args.gemm_n > 0 ? args.gemm_n : 1024, 3);
  r.ceiling_gflops = trainer::gemm_ceiling_gflops(r.gemm_rates, r.precision);
  if (comm->rank() != 0) return 0;
  const ModelConfig& mc = setup->model->config();
  std::printf(
      "train (%s): %lld layers, %lld tokens/step, %s, %lld rank(s) x %lld threads, %.1fM params (%.1fM train)\n",
      cfg->source.c_str(), static_cast<long long>(mc.num_layers), static_cast<long long>(r.tokens_per_step),
      r.precision.c_str(), static_cast<long long>(comm->world()), static_cast<long long>(r.threads), r.params / 1e6,
      r.trainable / 1e6);
  std::printf("step %.3f s (forward %.3f, backward %.3f, optimizer %.3f)  %.1f tokens/s  peak %.2f GiB\n", r.step_s,
              r.forward_s, r.backward_s, r.optimizer_s, r.tokens_per_s, r.peak_bytes / 1073741824.0);
  std::printf("process CPU time %.3f s per step (%.2f cores busy on average)\n", r.cpu_s, r.cpu_s / r.step_s);
  std::printf("GEMM rate now (n=%lld):", static_cast<long long>(r.gemm_rates.empty() ? 0 : r.gemm_rates[0].n));
  for (const auto& g : r.gemm_rates) std::printf(" %s %.1f", g.kind.c_str(), g.gflops);
  std::printf(" GFLOP/s\n");
  std::ostringstream os;
  const trainer::StepProfileInput in = r.profile_input();
  trainer::print_flop_summary(os, in);
  trainer::print_step_profile(os, in, args.profile);
  std::fputs(os.str().c_str(), stdout);
  write_json(trainer::train_bench_json(r, mc, cfg->source));
  return 0;
}

// A table of ms per pass by op kind, one column per pass shape (the sum is a little above the untimed passes': the
// profiler's clocks).
void print_op_table(const std::string& title, const std::vector<std::string>& headers,
                    const std::vector<const std::map<std::string, double>*>& columns) {
  std::set<std::string> names;
  for (const auto* col : columns)
    for (const auto& [name, ms] : *col) names.insert(name);
  std::printf("\n%s\n%-14s", title.c_str(), "op");
  for (const auto& h : headers) std::printf(" %8s", h.c_str());
  std::vector<double> total(columns.size(), 0.0);
  auto row = [&](const std::string& name, const std::vector<double>& ms) {
    std::printf("\n%-14s", name.c_str());
    for (double x : ms) std::printf(" %8.3f", x);
  };
  for (const auto& name : names) {
    std::vector<double> ms;
    for (const auto* col : columns) {
      const auto it = col->find(name);
      ms.push_back(it == col->end() ? 0.0 : it->second);
      total[ms.size() - 1] += ms.back();
    }
    row(name, ms);
  }
  row("sum", total);
  std::printf("\n");
}

int bench_decode() {
  if (args.checkpoint.empty()) throw_input_error("bench decode: --checkpoint is required");
  LlamaOptions opt;
  opt.requires_grad = false;
  opt.device = device_flag(args.device == "auto" ? "cpu" : args.device);
  LoadedModel m = load_model(args.checkpoint, opt);
  m.model->set_inference_weights(weights_flag(args.weights));
  std::optional<DraftHeads> heads;
  if (has_draft_heads(args.checkpoint)) {
    heads.emplace(load_draft_heads(args.checkpoint, *m.model));
    heads->set_inference_weights(draft_weight_format(args.draft_weights, m.model->inference_weights()));
  }
  DecodeProfile profile;
  const DecodeCost c = measure_decode_cost(*m.model, heads ? &*heads : nullptr, kDecodeCostNodes,
                                           static_cast<int>(std::max<int64_t>(args.steps, 3)),
                                           args.profile ? &profile : nullptr);
  const std::string cache = decode_cost_cache_path(c.key);
  std::filesystem::create_directories(std::filesystem::path(cache).parent_path());
  write_json_atomically(cache, c.to_json());
  std::printf("decode (%s, weights %s): AR step %.2f ms (%.1f tokens/s), heads %.2f ms\n", args.checkpoint.c_str(),
              args.weights.c_str(), c.ar_step_ms, 1e3 / c.ar_step_ms, c.draft_ms);
  std::printf("%6s %10s %14s\n", "nodes", "verify ms", "x AR step");
  for (size_t i = 0; i < c.nodes.size(); ++i)
    std::printf("%6lld %10.2f %14.2f\n", static_cast<long long>(c.nodes[i]), c.verify_ms[i],
                c.verify_ms[i] / c.ar_step_ms);
  std::printf("cached for --tree auto: %s\n", cache.c_str());
  nlohmann::json j = c.to_json();
  if (args.profile) {
    std::vector<std::string> headers{"AR"};
    std::vector<const std::map<std::string, double>*> columns{&profile.ar_step_ms};
    for (size_t i = 0; i < c.nodes.size(); ++i)
      headers.push_back(std::to_string(c.nodes[i])), columns.push_back(&profile.verify_ms[i]);
    print_op_table("ms per pass by op (profiled passes): AR step, then verify_tree at each node count", headers,
                   columns);
    j["profile_ms_per_pass"] = {{"ar_step", profile.ar_step_ms}, {"verify", profile.verify_ms}};
  }
  // What continuous batching (linspec serve) gets from one step over B sequences.
  const BatchedDecodeCost batched =
      measure_batched_decode(*m.model, {1, 4, 16}, static_cast<int>(std::max<int64_t>(args.steps, 3)), args.profile);
  std::printf("\ncontinuous batching (decode_batched, one token for each of B sequences)\n%6s %10s %10s %12s\n", "B",
              "step ms", "tokens/s", "x B=1 rate");
  for (size_t i = 0; i < batched.batch.size(); ++i) {
    const double rate = 1e3 * static_cast<double>(batched.batch[i]) / batched.step_ms[i];
    std::printf("%6lld %10.2f %10.1f %12.2f\n", static_cast<long long>(batched.batch[i]), batched.step_ms[i], rate,
                rate * batched.step_ms[0] / 1e3);
  }
  j["batched"] = {{"batch", batched.batch}, {"step_ms", batched.step_ms}};
  if (args.profile) {
    std::vector<std::string> headers;
    std::vector<const std::map<std::string, double>*> columns;
    for (size_t i = 0; i < batched.batch.size(); ++i)
      headers.push_back("B=" + std::to_string(batched.batch[i])), columns.push_back(&batched.profile_ms[i]);
    print_op_table("ms per batched step by op (profiled steps)", headers, columns);
    j["batched"]["profile_ms_per_step"] = batched.profile_ms;
  }
  j["bench"] = "decode", j["checkpoint"] = args.checkpoint, j["hardware"] = hardware_description();
  write_json(j);
  return 0;
}

RegisterCommand reg(Command{
    "bench", "Benchmarks: gemm (GFLOP/s), train (tokens/s of the training step), decode (verify cost)",
    [](CLI::App& s) {
      s.add_option("what", args.what, "gemm | train | decode")
          ->required()
          ->check(CLI::IsMember({"gemm", "train", "decode"}));
      s.add_option("--checkpoint", args.checkpoint,
                   "decode: the checkpoint whose decode and tree verification to time");
      add_weights_flag(s, args.weights);
      add_draft_weights_flag(s, args.draft_weights);
      s.add_option("config", args.config,
                   "train: the experiment config whose step to time (default: a SmolLM2-shaped synthetic model)");
      s.add_option("--set", args.overrides, "train: override a config key (key=value), repeatable");
      s.add_option("--stage", args.stage, "train: which stage of a staged config (stages:) to time");
      s.add_option(
          "--device", args.device,
          "gemm, train, decode: auto | cpu | cuda (gemm, train auto: CUDA when built and a GPU is visible; decode auto: cpu)");
      auto shape = [](CLI::Option* o) { o->each([](const std::string&) { args.shape_flags = true; }); };
      shape(s.add_option("--precision", args.precision, "train (synthetic): matmul precision fp32 | bf16"));
      shape(s.add_option("--layers", args.layers, "train (synthetic): decoder layers (SmolLM2 has 30)"));
      shape(s.add_option("--batch", args.batch, "train (synthetic): sequences per step"));
      shape(s.add_option("--seq", args.seq, "train (synthetic): tokens per sequence"));
      s.add_option("--steps", args.steps, "measured steps (gemm: repetitions)");
      s.add_option("--warmup", args.warmup, "train: unmeasured steps first");
      shape(s.add_flag("--recompute", args.recompute, "train (synthetic): per-layer activation recomputation"));
      s.add_option("--gemm-n", args.gemm_n, "gemm, train: matrix size n (n x n x n) of the GEMM rate (default 2048 for gemm, 1024 for train)");
      s.add_flag("--profile", args.profile,
                 "train: where the step goes (time and GFLOP/s per op family, per region and per GEMM shape, against "
                 "the GEMM ceiling); decode: ms per pass of each op kind, AR step and every tree size");
      s.add_option("--json", args.json_out, "write the results as JSON here");
      return std::function<int()>([] {
        return args.what == "gemm" ? bench_gemm() : args.what == "decode" ? bench_decode() : bench_train();
      });
    }});

}  // namespace
}  // namespace linspec::apps
