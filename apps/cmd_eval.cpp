// linspec eval --checkpoint C --data FILE --ppl [--ctx N] [--stride S] --json OUT
//              [--decode] [--speculative heads|draft [--tree T] [--draft D] [--gamma G]] [--context-sweep 1024,8192]
// One JSON report: perplexity, AR prefill / decode tokens/s, speculative tokens/s, acceptance and speedup vs AR,
// and per-context memory, with the hardware, threads, dtype and tree named (README documents the keys).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "apps/command.h"
#include "core/error.h"
#include "data/token_shards.h"
#include "serve/decode_bench.h"
#include "serve/model_loader.h"
#include "serve/perplexity.h"
#include "serve/report.h"
#include "serve/speculative_loader.h"

namespace linspec::apps {
namespace {
struct Args {
  std::string checkpoint, data, json, speculative, device = "cpu", weights = "f32";
  bool ppl = false, decode = false, profile = false;
  std::vector<int64_t> context_sweep;
  int64_t ctx = 1024, stride = 0, max_tokens = 0;
  std::string precision = "fp32";
  // decode / speculative / context sweep
  int64_t prompts = 4, prompt_len = 64, new_tokens = 64, batch = 1, sweep_decode_tokens = 16;
  double temperature = 0.0;
  uint64_t seed = 0;
  SpeculativeSetup spec;
  std::string plot;
} args;

// Prompts of the decode benchmarks when no --data is given: varied English openings.
const char* kBuiltinPrompts[] = {
    "The history of the printing press begins in", "To install the package on a fresh machine, first",
    "Photosynthesis is the process by which plants", "In the year 1848, revolutions spread across",
    "The function returns a list of tuples, where each", "Once upon a time, in a small village near the sea,",
    "The main difference between a compiler and an interpreter", "Water boils at a lower temperature at high altitude because",
};

// Token ids of the evaluation text: a text file tokenized as one document, or the val split of shards.
std::vector<int32_t> evaluation_ids(const LoadedModel& m, const std::string& path) {
  if (path.ends_with(".h5")) {
    TokenShards s = load_token_shards(path);
    if (s.tokenizer_fingerprint != m.tokenizer->fingerprint())
      throw_input_error(path, ": token shards were made with a different tokenizer than ", args.checkpoint);
    check_token_ids(s, m.checkpoint.config.vocab_size, path);
    const auto& src = s.val.tokens.empty() ? s.train.tokens : s.val.tokens;
    return std::vector<int32_t>(src.begin(), src.end());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error(path, ": cannot open the evaluation data");
  std::stringstream ss;
  ss << in.rdbuf();
  return m.tokenizer->encode(ss.str());
}

// Benchmark prompts: --prompts windows of --prompt-len tokens spread over the data, else the built-in openings.
std::vector<std::vector<int32_t>> benchmark_prompts(const LoadedModel& m, const std::vector<int32_t>& data) {
  std::vector<std::vector<int32_t>> out;
  if (!data.empty()) {
    const int64_t len = std::min<int64_t>(args.prompt_len, static_cast<int64_t>(data.size()));
    const int64_t span = static_cast<int64_t>(data.size()) - len;
    for (int64_t i = 0; i < args.prompts; ++i) {
      const int64_t at = args.prompts > 1 ? span * i / (args.prompts - 1) : 0;
      out.emplace_back(data.begin() + at, data.begin() + at + len);
    }
    return out;
  }
  const int64_t n = sizeof(kBuiltinPrompts) / sizeof(kBuiltinPrompts[0]);
  for (int64_t i = 0; i < args.prompts; ++i) out.push_back(m.tokenizer->encode(kBuiltinPrompts[i % n]));
  return out;
}

std::string default_plot_path() {
  if (!args.plot.empty()) return args.plot;
  if (args.json.empty()) return "";
  const std::string base = args.json.ends_with(".json") ? args.json.substr(0, args.json.size() - 5) : args.json;
  return base + "_context.png";
}

// --profile: ms per op of an AR token (its "step/" regions) beside ms per speculative step of each phase's ops.
void print_decode_profile(const nlohmann::json& report) {
  const std::vector<std::string> phases = {"step", "draft", "verify", "accept", "commit"};
  std::map<std::string, std::map<std::string, double>> ms;  // op -> phase -> ms
  const auto add = [&](const nlohmann::json& run) {
    if (!run.contains("profile_ms")) return;
    for (const auto& [name, v] : run["profile_ms"].items()) {
      const auto slash = name.find('/');
      const std::string phase = name.substr(0, slash);
      const std::string op = slash == std::string::npos ? "(own)" : name.substr(slash + 1);
      if (std::find(phases.begin(), phases.end(), phase) != phases.end()) ms[op][phase] += v.get<double>();
    }
  };
  add(report["decode"]);
  if (report.contains("speculative")) add(report["speculative"]);
  std::printf("%-24s %10s %10s %10s %10s %10s\n", "ms per AR token / step", "AR", "draft", "verify", "accept",
              "commit");
  std::map<std::string, double> total;
  for (const auto& [op, by_phase] : ms) {
    std::printf("%-24s", op.c_str());
    for (const auto& ph : phases) {
      const auto it = by_phase.find(ph);
      if (it == by_phase.end()) {
        std::printf(" %10s", "");
      } else {
        std::printf(" %10.3f", it->second);
        total[ph] += it->second;
      }
    }
    std::printf("\n");
  }
  std::printf("%-24s", "sum");
  for (const auto& ph : phases) std::printf(" %10.3f", total[ph]);
  std::printf("\n");
}

void decode_reports(const LoadedModel& m, const std::vector<int32_t>& data, nlohmann::json& report) {
  if (args.prompts < 1 || args.prompt_len < 1 || args.new_tokens < 1 || args.batch < 1)
    throw_input_error("eval: --prompts, --prompt-len, --new-tokens and --batch must be positive");
  const auto prompts = benchmark_prompts(m, data);
  GenerationConfig cfg;
  cfg.max_new_tokens = args.new_tokens;
  cfg.sampling.temperature = args.temperature;
  cfg.sampling.seed = args.seed;
  cfg.sampling.validate();
  LoadedSpeculator spec;
  if (!args.speculative.empty()) {
    args.spec.mode = args.speculative;
    spec = load_speculator(*m.model, args.checkpoint, args.spec);  // before timing: bad input fails fast
  }
  const DecodeRun ar = bench_autoregressive(*m.model, prompts, cfg, args.profile);
  report["decode"] = ar.report;
  std::cerr << "eval: AR prefill " << ar.report["prefill_tokens_per_s"].get<double>() << " tokens/s, decode "
            << ar.report["decode_tokens_per_s"].get<double>() << " tokens/s, "
            << 100 * ar.report["repeated_4gram_fraction"].get<double>() << "% of generated 4-grams repeat\n";
  if (spec.speculator) {
    const DecodeRun sr = bench_speculative(*spec.speculator, prompts, cfg, &ar, args.batch, args.profile);
    report["speculative"] = sr.report;
    std::cerr << "eval: speculative (" << args.speculative << ") " << sr.report["decode_tokens_per_s"].get<double>()
              << " tokens/s, " << sr.report["mean_accepted_tokens_per_step"].get<double>()
              << " tokens per step (bonus counted), speedup " << sr.report["speedup_vs_ar"].get<double>() << "x\n";
  }
  if (args.profile) print_decode_profile(report);
}

void sweep_report(const LoadedModel& m, const std::vector<int32_t>& data, nlohmann::json& report) {
  std::vector<int32_t> source = data;
  if (source.empty())
    for (const char* p : kBuiltinPrompts)
      for (int32_t id : m.tokenizer->encode(p, {.add_special = false})) source.push_back(id);
  nlohmann::json sweep;
  sweep["points"] = context_sweep(*m.model, source, args.context_sweep, args.sweep_decode_tokens);
  const std::string png = default_plot_path();
  const std::string attention = m.model->config().attention.is_null()
                                    ? std::string("softmax")
                                    : m.model->config().attention.value("preset", std::string("?"));
  sweep["plot"] = !png.empty() && plot_context_sweep(sweep["points"], "linspec " + attention + ": decode speed and memory vs context", png)
                      ? nlohmann::json(png)
                      : nlohmann::json(nullptr);
  report["context_sweep"] = sweep;
}

int run() {
  if (!args.ppl && !args.decode && args.speculative.empty() && args.context_sweep.empty())
    throw_input_error("eval: choose at least one of --ppl, --decode, --speculative, --context-sweep");
  if (args.ppl && args.data.empty()) throw_input_error("eval --ppl: --data is required");
  if (args.profile && !args.decode && args.speculative.empty())
    throw_input_error("eval --profile: profiles the decode runs; add --decode or --speculative");
  LlamaOptions opt;
  opt.precision = args.precision == "bf16" ? ops::MatmulPrecision::BF16 : ops::MatmulPrecision::F32;
  opt.device = device_flag(args.device);
  LoadedModel m = load_model(args.checkpoint, opt);
  m.model->set_inference_weights(weights_flag(args.weights));
  nlohmann::json report;
  report["checkpoint"] = args.checkpoint;
  report["hardware"] = hardware_description();
  report["precision"] = args.precision;
  report["weights"] = args.weights;
  report["dtype"] = dtype_name(m.model->options().dtype);
  report["threads"] = report["hardware"]["threads"];
  report["attention"] = m.model->config().attention.is_null() ? nlohmann::json("softmax") : m.model->config().attention;
  const std::vector<int32_t> data_ids = args.data.empty() ? std::vector<int32_t>{} : evaluation_ids(m, args.data);
  if (args.decode || !args.speculative.empty()) decode_reports(m, data_ids, report);
  if (!args.context_sweep.empty()) sweep_report(m, data_ids, report);
  if (args.ppl) {
    const std::vector<int32_t>& ids = data_ids;
    PerplexityResult r = evaluate_perplexity(*m.model, ids, {args.ctx, args.stride, args.max_tokens});
    report["data"] = args.data;
    report["ppl"] = r.ppl;
    report["mean_nll"] = r.mean_nll;
    report["tokens"] = r.tokens;
    report["scored_tokens"] = r.scored_tokens;
    report["ctx"] = args.ctx;
    report["stride"] = args.stride > 0 ? args.stride : args.ctx;
    report["windows"] = r.windows;
    report["seconds"] = r.seconds;
    report["scored_tokens_per_s"] = r.scored_tokens / std::max(r.seconds, 1e-9);
    std::cerr << "eval: ppl " << r.ppl << " over " << r.scored_tokens << " scored tokens (" << r.windows
              << " windows of " << args.ctx << ")\n";
  }
  if (!args.json.empty()) write_json_atomically(args.json, report);
  else std::cout << report.dump(2) << "\n";
  return 0;
}

RegisterCommand reg(Command{
    "eval", "Evaluate a checkpoint: perplexity, decode speed, speculative speedup", [](CLI::App& s) {
      s.add_option("--checkpoint", args.checkpoint, "Checkpoint (.h5)")->required();
      s.add_option("--device", args.device, "cpu (default) | cuda | auto: where the model and its decode states live (the baseline kernels run on the CPU only)");
      add_weights_flag(s, args.weights);
      add_draft_weights_flag(s, args.spec.draft_weights);
      s.add_option("--data", args.data, "Text file (tokenized as one document) or token shards (.h5: val split)");
      s.add_flag("--ppl", args.ppl, "Perplexity");
      s.add_option("--ctx", args.ctx, "Window length in tokens")->capture_default_str();
      s.add_option("--stride", args.stride, "Window stride (default: ctx, non-overlapping)");
      s.add_option("--max-tokens", args.max_tokens, "Evaluate only the first N tokens of the data");
      s.add_option("--precision", args.precision, "fp32 | bf16 GEMMs")
          ->check(CLI::IsMember({"fp32", "bf16"}))
          ->capture_default_str();
      s.add_flag("--decode", args.decode, "Prefill and decode tokens/s");
      s.add_flag("--profile", args.profile,
                 "With --decode: ms per AR token and per speculative step of every op, by phase (JSON: profile_ms)");
      s.add_option("--speculative", args.speculative, "heads | eagle | draft")->check(CLI::IsMember({"heads", "eagle", "draft"}));
      s.add_flag("--fresh-heads", args.spec.fresh_heads,
                 "Untrained heads (LM-head copies) instead of /draft/heads: smoke tests, baselines");
      s.add_option("--tree", args.spec.tree, "Heads tree: default | auto (chosen each step from the heads' confidence and this machine's verify cost, cached by `bench decode`) | FILE.json")->capture_default_str();
      s.add_option("--draft", args.spec.draft,
                   "Draft model: checkpoint PATH or first-layers:N (default: the checkpoint's /draft/model)");
      s.add_option("--gamma", args.spec.gamma, "Draft tokens per step")->capture_default_str();
      s.add_option("--prompts", args.prompts, "Decode benchmark prompts")->capture_default_str();
      s.add_option("--prompt-len", args.prompt_len, "Prompt tokens (prompts taken from --data)")->capture_default_str();
      s.add_option("--new-tokens", args.new_tokens, "New tokens per prompt")->capture_default_str();
      s.add_option("--batch", args.batch, "Speculative static batch size")->capture_default_str();
      s.add_option("--temperature", args.temperature, "Decode benchmarks: 0 greedy")->capture_default_str();
      s.add_option("--seed", args.seed, "Sampling seed")->capture_default_str();
      s.add_option("--context-sweep", args.context_sweep, "Context lengths, e.g. 1024,8192,32768")->delimiter(',');
      s.add_option("--sweep-decode-tokens", args.sweep_decode_tokens, "Tokens decoded at each swept context")
          ->capture_default_str();
      s.add_option("--plot", args.plot, "Context-sweep PNG (default: <json>_context.png)");
      s.add_option("--json", args.json, "Write the report here (default: stdout)");
      return run;
    }});
}  // namespace
}  // namespace linspec::apps
