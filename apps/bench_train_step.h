// The training-step and GEMM benchmarks shared by `linspec bench` (apps/cmd_bench.cpp) and bench/bench_train.cpp.
// Header-only because the bench executables do not link apps/.
//
// train: a SmolLM2-shaped softmax model (hidden 576, 9/3 heads of 64, FFN 1536, vocab 49152, tied embeddings),
// random init, one step = forward + next-token cross-entropy + backward + AdamW, timed per phase and per op kind.
// gemm:  square f32 and bf16 GEMMs through kernels/matmul.h.
#pragma once
#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/device.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/matmul.h"
#include "model/llama.h"
#include "model/op_profile.h"
#include "trainer/adamw.h"

namespace linspec::bench {

inline ModelConfig smollm2_shaped_config(int64_t layers) {
  ModelConfig c;
  c.vocab_size = 49152;
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_layers = layers;
  c.num_heads = 9;
  c.num_kv_heads = 3;
  c.head_dim = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100000.0;
  c.max_position_embeddings = 8192;
  c.tie_word_embeddings = true;
  return c;
}

struct TrainBenchOptions {
  int64_t layers = 30, batch = 4, seq = 256, steps = 3, warmup = 1;
  ops::MatmulPrecision precision = ops::MatmulPrecision::F32;
  bool recompute = false;
  uint64_t seed = 1;
};

struct TrainBenchResult {
  TrainBenchOptions options;
  int64_t params = 0, threads = 0, peak_bytes = 0, start_bytes = 0;
  double step_s = 0, forward_s = 0, backward_s = 0, optimizer_s = 0, tokens_per_s = 0, cpu_s = 0;
  std::vector<double> losses;
  std::map<std::string, OpTimes> ops;  // summed over the measured steps
};

inline const char* precision_name(ops::MatmulPrecision p) { return p == ops::MatmulPrecision::BF16 ? "bf16" : "fp32"; }

// The model, optimizer and batch of the benchmark; step() runs one full training step.
class TrainStepBench {
 public:
  explicit TrainStepBench(const TrainBenchOptions& o)
      : o_(o),
        model_(LlamaModel::random(smollm2_shaped_config(o.layers), o.seed, model_options(o))),
        opt_(param_group(model_), adamw_config()) {
    // Random tokens [B, T + 1]: inputs are the first T, targets the last T.
    Philox rng(o.seed + 1);
    std::vector<int32_t> tokens(o.batch * (o.seq + 1));
    for (auto& t : tokens) t = static_cast<int32_t>(rng.below(model_.config().vocab_size));
    const Tensor all = Tensor::from_vector(tokens, {o.batch, o.seq + 1});
    inputs_ = all.slice(1, 0, o.seq).contiguous();
    targets_ = all.slice(1, 1, o.seq + 1).contiguous().reshape({o.batch * o.seq});
  }

  struct Times {
    double forward_s = 0, backward_s = 0, optimizer_s = 0, loss = 0;
    double cpu_s = 0;  // process CPU time of the step (all threads): robust to a machine shared with others
  };
  // One step; op times go to `profile` when given (keep it alive until step() returns).
  Times step(OpProfile* profile = nullptr) {
    OpProfile::Scope scope(profile);
    opt_.zero_grad();
    Times t;
    const std::clock_t c0 = std::clock();
    const double t0 = seconds_now();
    const Tensor logits = model_.forward(inputs_);
    const Tensor loss = profiled("cross_entropy", [&] {
      return ops::cross_entropy(ops::reshape(logits, {o_.batch * o_.seq, model_.config().vocab_size}), targets_);
    });
    const double t1 = seconds_now();
    backward(loss);
    const double t2 = seconds_now();
    opt_.step();
    const double t3 = seconds_now();
    t.forward_s = t1 - t0, t.backward_s = t2 - t1, t.optimizer_s = t3 - t2, t.loss = loss.item();
    t.cpu_s = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    return t;
  }
  const LlamaModel& model() const { return model_; }

 private:
  static LlamaOptions model_options(const TrainBenchOptions& o) {
    LlamaOptions mo;
    mo.precision = o.precision;
    mo.recompute = o.recompute;
    return mo;
  }
  static std::vector<ParamGroup> param_group(const LlamaModel& m) {
    ParamGroup g;
    for (const auto& [name, t] : m.named_parameters()) g.params.push_back(t), g.names.push_back(name);
    return {g};
  }
  static AdamWConfig adamw_config() {
    AdamWConfig c;
    c.lr = 1e-4;
    return c;
  }
  TrainBenchOptions o_;
  LlamaModel model_;
  AdamW opt_;
  Tensor inputs_, targets_;
};

inline TrainBenchResult run_train_bench(const TrainBenchOptions& o) {
  TrainBenchResult r;
  r.options = o;
  r.threads = num_threads();
  TrainStepBench bench(o);
  r.params = bench.model().parameters().numel();
  OpProfile profile;
  for (int64_t step = 0; step < o.warmup; ++step) bench.step();
  reset_peak_memory(Device::CPU);
  r.start_bytes = memory_stats(Device::CPU).current_bytes;
  for (int64_t step = 0; step < o.steps; ++step) {
    const auto t = bench.step(&profile);
    r.forward_s += t.forward_s, r.backward_s += t.backward_s, r.optimizer_s += t.optimizer_s, r.cpu_s += t.cpu_s;
    r.losses.push_back(t.loss);
  }
  r.peak_bytes = memory_stats(Device::CPU).peak_bytes;
  const double n = static_cast<double>(std::max<int64_t>(o.steps, 1));
  r.forward_s /= n, r.backward_s /= n, r.optimizer_s /= n, r.cpu_s /= n;
  r.step_s = r.forward_s + r.backward_s + r.optimizer_s;
  r.tokens_per_s = static_cast<double>(o.batch * o.seq) / r.step_s;
  r.ops = profile.times();
  for (auto& [name, t] : r.ops) t.forward_s /= n, t.backward_s /= n, t.calls /= std::max<int64_t>(o.steps, 1);
  return r;
}

inline nlohmann::json to_json(const TrainBenchResult& r) {
  nlohmann::json ops = nlohmann::json::object();
  for (const auto& [name, t] : r.ops)
    ops[name] = {{"forward_s", t.forward_s}, {"backward_s", t.backward_s}, {"calls_per_step", t.calls}};
  const auto& o = r.options;
  return {{"bench", "train"},
          {"model",
           {{"layers", o.layers},
            {"hidden", 576},
            {"heads", 9},
            {"kv_heads", 3},
            {"ffn", 1536},
            {"vocab", 49152},
            {"tied", true},
            {"params", r.params}}},
          {"batch", o.batch},
          {"seq", o.seq},
          {"steps", o.steps},
          {"warmup", o.warmup},
          {"precision", precision_name(o.precision)},
          {"recompute", o.recompute},
          {"threads", r.threads},
          {"tokens_per_s", r.tokens_per_s},
          {"step_s", r.step_s},
          {"forward_s", r.forward_s},
          {"backward_s", r.backward_s},
          {"optimizer_s", r.optimizer_s},
          {"cpu_s_per_step", r.cpu_s},
          {"peak_bytes", r.peak_bytes},
          {"start_bytes", r.start_bytes},
          {"losses", r.losses},
          {"ops_s_per_step", ops}};
}

struct GemmBenchResult {
  std::string kind;  // f32 | bf16 (bf16 operands) | f32_via_bf16 (f32 operands rounded on the fly)
  int64_t n = 0, reps = 0;
  double seconds = 0, gflops = 0;
};

// C[n, n] = A[n, n] · B[n, n], best of `reps` after one warm-up call.
inline std::vector<GemmBenchResult> run_gemm_bench(int64_t n, int64_t reps) {
  const auto& mm = backend(Device::CPU).matmul;
  Philox rng(3);
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (auto& x : a) x = rng.uniform_f32() - 0.5f;
  for (auto& x : b) x = rng.uniform_f32() - 0.5f;
  const Tensor a16 = Tensor::from_vector(a, {n, n}).to(DType::BF16),
               b16 = Tensor::from_vector(b, {n, n}).to(DType::BF16);
  const kernels::GemmShape s{1, n, n, n, false, false, false};
  std::vector<GemmBenchResult> out;
  auto measure = [&](const std::string& kind, auto&& call) {
    call();
    double best = 1e30;
    for (int64_t i = 0; i < reps; ++i) {
      const double t0 = seconds_now();
      call();
      best = std::min(best, seconds_now() - t0);
    }
    out.push_back({kind, n, reps, best, 2.0 * n * n * n / best * 1e-9});
  };
  measure("f32", [&] { mm.gemm_f32(s, a.data(), b.data(), c.data(), 0.f); });
  measure("bf16", [&] { mm.gemm_bf16(s, a16.data<uint16_t>(), b16.data<uint16_t>(), c.data(), 0.f); });
  measure("f32_via_bf16", [&] { mm.gemm_f32_via_bf16(s, a.data(), b.data(), c.data(), 0.f); });
  return out;
}

}  // namespace linspec::bench
