// Google Benchmark wrapper of the training-step benchmark (the same TrainStep as `linspec train` and
// `linspec bench train`): the SmolLM2-shaped synthetic default, fp32 and bf16 GEMMs, with and without recompute.
// Sizes from the environment so CI can run it small: LINSPEC_BENCH_LAYERS (30), _BATCH (4), _SEQ (256).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "trainer/comm.h"
#include "trainer/train_bench.h"

namespace {
using namespace linspec;

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

void BM_TrainStep(benchmark::State& state) {
  trainer::SyntheticTrainShape shape;
  shape.layers = env_int("LINSPEC_BENCH_LAYERS", 30);
  shape.batch = env_int("LINSPEC_BENCH_BATCH", 4);
  shape.seq = env_int("LINSPEC_BENCH_SEQ", 256);
  shape.precision = state.range(0) ? "bf16" : "fp32";
  shape.recompute = state.range(1) != 0;
  const trainer::ExperimentConfig cfg = trainer::synthetic_train_config(shape);
  trainer::TrainSetup setup = trainer::synthetic_training_setup(shape);
  auto comm = trainer::make_communicator("mpi");
  trainer::TrainBenchResult r;
  for (auto _ : state) r = trainer::run_train_bench(cfg, setup, *comm, *comm, 1, 1);  // one warm-up, one measured step
  state.counters["tokens/s"] = r.tokens_per_s;
  state.counters["forward_s"] = r.forward_s;
  state.counters["backward_s"] = r.backward_s;
  state.counters["optimizer_s"] = r.optimizer_s;
  state.counters["peak_GiB"] = r.peak_bytes / 1073741824.0;
  state.SetLabel(shape.precision + (shape.recompute ? "+recompute" : ""));
}
BENCHMARK(BM_TrainStep)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

}  // namespace
