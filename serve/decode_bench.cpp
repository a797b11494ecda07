#include "serve/decode_bench.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>

#include "core/error.h"
#include "model/op_profile.h"

namespace linspec {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  const std::string k = std::string(key) + ":";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
  return -1;
}

Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())});
}

int32_t next_token(const Tensor& logits, int64_t vocab, const SamplingConfig& s, Philox& rng) {
  const Tensor row = logits.to(DType::F32).contiguous().to(Device::CPU);  // sampling runs on the host
  return choose_token(row.data<float>() + row.numel() - vocab, vocab, s, rng);
}

double rate(double n, double s) { return s > 0 ? n / s : 0.0; }

}  // namespace

double repeated_ngram_fraction(const std::vector<std::vector<int32_t>>& outputs, int n) {
  int64_t total = 0, repeated = 0;
  for (const auto& out : outputs) {
    std::set<std::vector<int32_t>> seen;
    for (size_t i = 0; i + n <= out.size(); ++i, ++total)
      repeated += !seen.insert(std::vector<int32_t>(out.begin() + i, out.begin() + i + n)).second;
  }
  return total > 0 ? static_cast<double>(repeated) / static_cast<double>(total) : 0.0;
}

int64_t current_rss_bytes() { return status_kib("VmRSS") * 1024; }
int64_t peak_rss_bytes() { return status_kib("VmHWM") * 1024; }

DecodeRun bench_autoregressive(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                               const GenerationConfig& cfg, bool profile) {
  cfg.sampling.validate();
  OpProfile prof;
  OpProfile::Scope scope(profile ? &prof : nullptr);
  const int64_t V = model.config().vocab_size;
  DecodeRun run;
  double prefill_s = 0, decode_s = 0;
  int64_t prompt_tokens = 0, new_tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Philox rng = Philox(cfg.sampling.seed).fork(i);
    const auto& p = prompts[i];
    DecodeState state = model.new_decode_state(1, static_cast<int64_t>(p.size()) + cfg.max_new_tokens + 1);
    const double t0 = now_s();
    Tensor logits;
    profiled_phase("prefill", false, [&] { logits = model.decode(state, ids_tensor(p), true); });
    std::vector<int32_t> out;
    if (cfg.max_new_tokens > 0) out.push_back(next_token(logits, V, cfg.sampling, rng));
    const double t1 = now_s();
    while (static_cast<int64_t>(out.size()) < cfg.max_new_tokens)
      profiled_phase("step", false, [&] {
        logits = model.decode(state, ids_tensor({out.back()}), true);
        out.push_back(next_token(logits, V, cfg.sampling, rng));
      });
    const double t2 = now_s();
    prefill_s += t1 - t0, decode_s += t2 - t1;
    prompt_tokens += static_cast<int64_t>(p.size());
    new_tokens += static_cast<int64_t>(out.size());
    run.outputs.push_back(std::move(out));
  }
  run.report = {{"prompts", prompts.size()},
                {"prompt_tokens", prompt_tokens},
                {"new_tokens", new_tokens},
                {"temperature", cfg.sampling.temperature},
                {"prefill_s", prefill_s},
                {"decode_s", decode_s},
                {"prefill_tokens_per_s", rate(prompt_tokens, prefill_s)},
                {"decode_tokens_per_s", rate(new_tokens, decode_s)},
                {"end_to_end_tokens_per_s", rate(new_tokens, prefill_s + decode_s)},
                {"repeated_4gram_fraction", repeated_ngram_fraction(run.outputs)}};
  if (profile) run.report["profile_ms"] = prof.forward_ms_per(static_cast<double>(new_tokens - std::ssize(prompts)));
  return run;
}

DecodeRun bench_speculative(const Speculator& spec, const std::vector<std::vector<int32_t>>& prompts,
                            const GenerationConfig& cfg, const DecodeRun* ar, int64_t batch, bool profile) {
  LINSPEC_CHECK(batch >= 1, "bench_speculative: batch ", batch);
  DecodeRun run;
  SpeculativeStats stats;
  OpProfile prof;
  OpProfile::Scope scope(profile ? &prof : nullptr);
  for (size_t i = 0; i < prompts.size(); i += batch) {
    const size_t end = std::min(prompts.size(), i + static_cast<size_t>(batch));
    const std::vector<std::vector<int32_t>> group(prompts.begin() + i, prompts.begin() + end);
    GenerationConfig c = cfg;
    c.sampling.seed = Philox(cfg.sampling.seed).fork(i).seed();  // distinct streams per batch
    for (auto& r : spec.generate(group, c, &stats)) run.outputs.push_back(std::move(r.tokens));
  }
  nlohmann::json j = spec.describe();
  j.update(stats.to_json());
  j["batch"] = batch;
  j["temperature"] = cfg.sampling.temperature;
  j["decode_tokens_per_s"] = rate(stats.new_tokens, stats.decode_s);
  j["end_to_end_tokens_per_s"] = rate(stats.new_tokens, stats.prefill_s + stats.decode_s);
  if (ar) {
    const double ar_rate = ar->report.value("decode_tokens_per_s", 0.0);
    j["speedup_vs_ar"] = ar_rate > 0 ? rate(j["decode_tokens_per_s"].get<double>(), ar_rate) : 0.0;
    if (cfg.sampling.temperature == 0.0) {
      int64_t mismatched = 0;
      for (size_t i = 0; i < prompts.size(); ++i) mismatched += run.outputs[i] != ar->outputs.at(i);
      j["identical_to_ar"] = mismatched == 0;
      j["prompts_differing_from_ar"] = mismatched;
    }
  }
  if (profile) j["profile_ms"] = prof.forward_ms_per(static_cast<double>(stats.steps));
  run.report = j;
  return run;
}

nlohmann::json context_sweep(const LlamaModel& model, const std::vector<int32_t>& source,
                             const std::vector<int64_t>& lengths, int64_t decode_tokens, int64_t chunk) {
  if (source.empty()) throw_input_error("context sweep: no tokens to fill the context with");
  const int64_t V = model.config().vocab_size;
  nlohmann::json points = nlohmann::json::array();
  for (int64_t L : lengths) {
    if (L < 1) throw_input_error("--context-sweep: context lengths must be positive, got ", L);
    DecodeState state = model.new_decode_state(1, L + decode_tokens + 1);
    const double t0 = now_s();
    Tensor logits;
    for (int64_t at = 0; at < L; at += chunk) {
      const int64_t n = std::min(chunk, L - at);
      std::vector<int32_t> ids(n);
      for (int64_t i = 0; i < n; ++i) ids[i] = source[(at + i) % source.size()];
      logits = model.decode(state, ids_tensor(ids), true);
    }
    const double t1 = now_s();
    Philox rng(0);
    int32_t tok = next_token(logits, V, {}, rng);
    for (int64_t i = 0; i < decode_tokens; ++i) tok = next_token(model.decode(state, ids_tensor({tok}), true), V, {}, rng);
    const double t2 = now_s();
    points.push_back({{"context", L},
                      {"prefill_s", t1 - t0},
                      {"prefill_tokens_per_s", rate(L, t1 - t0)},
                      {"decode_tokens", decode_tokens},
                      {"decode_tokens_per_s", rate(decode_tokens, t2 - t1)},
                      {"state_bytes", state.bytes()},
                      {"rss_bytes", current_rss_bytes()},
                      {"peak_rss_bytes", peak_rss_bytes()}});
    std::cerr << "context sweep: " << L << " tokens: state " << state.bytes() / 1048576.0 << " MiB, decode "
              << rate(decode_tokens, t2 - t1) << " tokens/s\n";
  }
  return points;
}

bool plot_context_sweep(const nlohmann::json& sweep, const std::string& title, const std::string& png_path) {
  if (sweep.empty()) return false;
  const std::string data = png_path + ".dat." + std::to_string(getpid());
  {
    std::ofstream out(data);
    if (!out) return false;
    for (const auto& p : sweep)
      out << p["context"].get<int64_t>() << " " << p["decode_tokens_per_s"].get<double>() << " "
          << p["state_bytes"].get<int64_t>() / 1048576.0 << " " << p["rss_bytes"].get<int64_t>() / 1048576.0 << "\n";
  }
  const std::string script = png_path + ".gp." + std::to_string(getpid());
  {
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 900,540 noenhanced\n"
       << "set output '" << png_path << "'\n"
       << "set title '" << title << "'\n"
       << "set logscale x 2\nset xlabel 'context (tokens)'\n"
       << "set ylabel 'decode tokens/s'\nset y2label 'memory (MiB)'\nset ytics nomirror\nset y2tics\n"
       << "set key outside bottom center horizontal\nset grid\n"
       << "plot '" << data << "' using 1:2 with linespoints lw 2 title 'decode tokens/s', "
       << "'' using 1:3 axes x1y2 with linespoints lw 2 title 'decode state (MiB)', "
       << "'' using 1:4 axes x1y2 with linespoints lw 2 title 'process RSS (MiB)'\n";
  }
  const int rc = std::system(("gnuplot '" + script + "' 2>&1").c_str());
  std::remove(data.c_str());
  std::remove(script.c_str());
  if (rc != 0) {
    std::cerr << "context sweep: gnuplot failed or is missing (rc " << rc << "); no PNG written\n";
    return false;
  }
  return true;
}

}  // namespace linspec
