// Google Benchmark wrapper of the training-step benchmark (the same step as `linspec bench train`):
// a SmolLM2-shaped softmax model, forward + cross-entropy + backward + AdamW, fp32 and bf16 GEMMs.
// Sizes from the environment so CI can run it small: LINSPEC_BENCH_LAYERS (30), _BATCH (4), _SEQ (256).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "apps/bench_train_step.h"

namespace {
using namespace linspec;

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

void BM_TrainStep(benchmark::State& state) {
  bench::TrainBenchOptions o;
  o.layers = env_int("LINSPEC_BENCH_LAYERS", 30);
  o.batch = env_int("LINSPEC_BENCH_BATCH", 4);
  o.seq = env_int("LINSPEC_BENCH_SEQ", 256);
  o.precision = state.range(0) ? ops::MatmulPrecision::BF16 : ops::MatmulPrecision::F32;
  o.recompute = state.range(1) != 0;
  bench::TrainStepBench b(o);
  b.step();  // warm-up: primitive creation, optimizer state allocation
  reset_peak_memory(Device::CPU);
  double fwd = 0, bwd = 0, optim = 0;
  for (auto _ : state) {
    const auto t = b.step();
    fwd += t.forward_s, bwd += t.backward_s, optim += t.optimizer_s;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(o.batch * o.seq) * n, benchmark::Counter::kIsRate);
  state.counters["forward_s"] = fwd / n;
  state.counters["backward_s"] = bwd / n;
  state.counters["adamw_s"] = optim / n;
  state.counters["peak_GiB"] = memory_stats(Device::CPU).peak_bytes / 1073741824.0;
  state.SetLabel(std::string(o.precision == ops::MatmulPrecision::BF16 ? "bf16" : "fp32") +
                 (o.recompute ? "+recompute" : ""));
}
BENCHMARK(BM_TrainStep)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3);

}  // namespace
