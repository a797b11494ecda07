#include "trainer/train_bench.h"

#include <algorithm>
#include <ctime>

#include "core/device.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/loader.h"
#include "trainer/flop_count.h"
#include "trainer/schedule.h"
#include "trainer/train_step.h"

namespace linspec::trainer {

ModelConfig smollm2_shaped_config(int64_t layers) {
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

ExperimentConfig synthetic_train_config(const SyntheticTrainShape& s) {
  ExperimentConfig cfg;
  cfg.source = "synthetic SmolLM2-shaped benchmark";
  cfg.data.seq_len = static_cast<int>(s.seq);
  cfg.train.micro_batch = static_cast<int>(s.batch);
  cfg.train.grad_accum = 1;
  cfg.train.precision = s.precision;
  cfg.train.recompute = s.recompute;
  cfg.train.lr = 1e-4;
  cfg.train.warmup_steps = 0;
  cfg.train.schedule = "constant";
  cfg.train.seed = static_cast<int>(s.seed);
  cfg.model.attention.preset = "softmax";
  return cfg;
}

TrainSetup synthetic_training_setup(const SyntheticTrainShape& s, Device device) {
  TrainSetup setup;
  LlamaOptions mo;
  mo.device = device;
  mo.precision = s.precision == "bf16" ? ops::MatmulPrecision::BF16 : ops::MatmulPrecision::F32;
  setup.model = std::make_unique<LlamaModel>(LlamaModel::random(smollm2_shaped_config(s.layers), s.seed, mo));
  std::set<std::string> all;
  for (const auto& [name, t] : setup.model->named_parameters()) all.insert(name);
  StudentOptions so;
  so.precision = mo.precision;
  so.recompute = s.recompute;
  setup.student = std::make_unique<Student>(*setup.model, nullptr, all, so);
  setup.objectives = ObjectiveWeights{};  // cross-entropy only
  // Eight batches of random windows; the loader wraps around.
  Philox rng(s.seed + 1);
  setup.data.train.tokens.resize(static_cast<size_t>(8 * s.batch * s.seq + 1));
  for (auto& t : setup.data.train.tokens) t = static_cast<uint32_t>(rng.below(setup.model->config().vocab_size));
  setup.data.train.doc_offsets = {0};
  return setup;
}

TrainBenchResult run_train_bench(const ExperimentConfig& cfg, TrainSetup& setup, Communicator& comm,
                                 Communicator& grad_comm, int64_t steps, int64_t warmup) {
  TrainBenchResult r;
  r.steps = steps, r.warmup = warmup, r.threads = num_threads(), r.precision = training_precision(cfg, setup.model->options().device);
  r.params = setup.model->parameters().numel();
  TrainStep step(cfg, comm, grad_comm, setup);
  for (const auto& s : step.sync().slots()) r.trainable += s.param.numel();
  r.tokens_per_step = step.tokens_per_step();
  WindowLoader loader(setup.data.train, cfg.data.seq_len, comm.rank(), comm.world(),
                      static_cast<uint64_t>(cfg.train.seed));
  Philox rng = Philox(static_cast<uint64_t>(cfg.train.seed)).fork(static_cast<uint64_t>(comm.rank()));
  ScheduleConfig schedule;
  schedule.kind = cfg.train.schedule;
  schedule.peak_lr = cfg.train.lr;
  schedule.warmup_steps = cfg.train.warmup_steps;
  schedule.total_steps = std::max<int>(cfg.train.steps, static_cast<int>(steps + warmup));
  schedule.min_lr_ratio = cfg.train.min_lr_ratio;
  auto next_batch = [&] { return loader.next(cfg.train.micro_batch); };
  const Device device = setup.model->rope_inv_freq().device();

  for (int64_t i = 0; i < warmup; ++i) step.run(next_batch, rng, learning_rate(schedule, static_cast<int>(i)), i);
  reset_peak_memory(device);
  r.start_bytes = memory_stats(device).current_bytes;
  OpProfile profile;
  for (int64_t i = 0; i < steps; ++i) {
    OpProfile::Scope scope(&profile);
    const std::clock_t c0 = std::clock();
    const int64_t at = warmup + i;
    const StepResult s = step.run(next_batch, rng, learning_rate(schedule, static_cast<int>(at)), at);
    r.cpu_s += static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    r.forward_s += s.phases.forward_s, r.backward_s += s.phases.backward_s, r.optimizer_s += s.phases.optimizer_s;
    r.losses.push_back(s.values[0].second);
  }
  r.peak_bytes = memory_stats(device).peak_bytes;
  const double n = static_cast<double>(std::max<int64_t>(steps, 1));
  r.forward_s /= n, r.backward_s /= n, r.optimizer_s /= n, r.cpu_s /= n;
  r.step_s = r.forward_s + r.backward_s + r.optimizer_s;
  r.tokens_per_s = static_cast<double>(r.tokens_per_step) / r.step_s;
  profile.scale(n);
  r.profile = profile;
  r.flops = count_step_flops(setup, cfg.train.micro_batch, cfg.data.seq_len);
  r.micro_batches = cfg.train.grad_accum;
  return r;
}

StepProfileInput TrainBenchResult::profile_input() const {
  StepProfileInput in;
  in.profile = &profile;
  in.step_s = step_s, in.optimizer_s = optimizer_s;
  in.flops = flops;
  in.micro_batches = micro_batches;
  in.ceiling_gflops = ceiling_gflops;
  in.precision = precision;
  return in;
}

nlohmann::json train_bench_json(const TrainBenchResult& r, const ModelConfig& c, const std::string& source) {
  nlohmann::json ops = nlohmann::json::object();
  for (const auto& [name, t] : r.profile.times())
    ops[name] = {{"forward_s", t.forward_s},
                 {"backward_s", t.backward_s},
                 {"calls_per_step", t.calls},
                 {"gemm_forward_flops", t.gemm_forward_flops},
                 {"gemm_backward_flops", t.gemm_backward_flops}};
  nlohmann::json rates = nlohmann::json::array();
  for (const auto& g : r.gemm_rates) rates.push_back({{"kind", g.kind}, {"n", g.n}, {"gflops", g.gflops}});
  nlohmann::json j = {{"bench", "train"},
          {"source", source},
          {"model",
           {{"layers", c.num_layers},
            {"hidden", c.hidden_size},
            {"heads", c.num_heads},
            {"kv_heads", c.num_kv_heads},
            {"ffn", c.intermediate_size},
            {"vocab", c.vocab_size},
            {"tied", c.tie_word_embeddings},
            {"params", r.params},
            {"trainable", r.trainable}}},
          {"tokens_per_step", r.tokens_per_step},
          {"steps", r.steps},
          {"warmup", r.warmup},
          {"precision", r.precision},
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
          {"ops_s_per_step", ops},
          {"gemm_rates", rates}};
  j["profile"] = step_profile_json(r.profile_input());
  return j;
}

}  // namespace linspec::trainer
