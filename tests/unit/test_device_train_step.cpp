// The training step (trainer/train_step.h) with the whole model on a second device: Device::TestHost, host memory
// behind a distinct device whose every copy to or from the CPU is counted (tests/support/test_host_device.h).
// A step with CE + kd + draft heads, LoRA (with dropout), an aug model, gradient accumulation and clipping:
//   - gives the CPU run's losses, gradient norms and parameters to within float rounding (the same kernels run; the
//     one intended difference is where a loss's upstream gradient is applied: read on the host for CPU memory,
//     multiplied on the device elsewhere, core/ops/loss.cpp — so a tensor that took a wrong path would show as a
//     real difference, rounding does not);
//   - copies nothing between the devices but the micro-batches (host → device, through pinned buffers and the
//     asynchronous upload, trainer/batch_stager.h) and the logged scalars
//     (device → host), however many layers the model has (a per-layer or per-parameter copy would show);
//   - leaves every trainable tensor, its gradient bucket and its AdamW moments on the device.
// ZeRO-1 runs the sharded reduce and the parameter all-gather on the device too; DeviceTrainStepRanks repeats the
// check with two MPI ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "model/checkpoint.h"
#include "tests/support/test_host_device.h"
#include "tests/unit/fake_communicator.h"
#include "tests/unit/llama_test_util.h"
#include "trainer/train_step.h"
#include "trainer/trainable.h"

namespace linspec {
namespace {

using namespace trainer;
using testing::cross_device_copies;
using testing::random_ids;

constexpr int kMicro = 2, kBatch = 2, kSeq = 12;

ExperimentConfig step_config(bool zero) {
  ExperimentConfig cfg;
  cfg.data.seq_len = kSeq;
  cfg.train.micro_batch = kBatch;
  cfg.train.grad_accum = kMicro;
  cfg.train.lr = 1e-2;
  cfg.train.clip_grad_norm = 0.05;  // small enough that every step clips
  cfg.distributed.zero = zero ? 1 : 0;
  return cfg;
}

TrainSetup step_setup(Device device, int64_t layers) {
  ModelConfig c = testing::tiny_llama_config();
  c.num_layers = layers;
  LlamaOptions o;
  o.device = device;
  TrainSetup s;
  LlamaOptions teacher = o;
  teacher.requires_grad = false;
  s.teacher = std::make_unique<LlamaModel>(LlamaModel::random(c, 5, teacher));
  s.model = std::make_unique<LlamaModel>(LlamaModel::random(c, 5, o));
  linspec::AttentionSpec spec;
  spec.preset = "aug";
  spec.options = {{"group_size", "4"}, {"conv_taps", "3"}};
  s.model->set_attention_spec(spec);
  LoraConfig lc;
  lc.rank = 2;
  lc.targets = {"q", "v", "up"};
  lc.dropout = 0.1;  // masks drawn on the model's device (ops::dropout), no copy
  s.lora = std::make_unique<LoraSet>(c, lc, 7, DType::F32, device);
  DraftHeadsConfig hc;
  hc.count = 2;
  s.drafts.heads = std::make_unique<DraftHeads>(DraftHeads::init_from(*s.model, hc, true));
  s.drafts.settings.heads_weight = 0.3;
  s.objectives = {1.0, 0.0, 0.5, 2.0};  // ce, attention transfer, kd, kd temperature
  s.student = std::make_unique<Student>(*s.model, s.lora.get(),
                                        select_trainable(*s.model, {"lora", "norms", "attention_new"}), StudentOptions{});
  return s;
}

struct StepsRun {
  std::vector<StepResult> steps;
  std::map<std::string, std::vector<float>> params;  // after the last step
  std::vector<testing::CrossDeviceCopies> copies;    // per step
};

StepsRun run_steps(Device device, int64_t layers, bool zero, int steps = 2, Communicator* mpi = nullptr) {
  testing::install_test_host_device();
  const ExperimentConfig cfg = step_config(zero);
  TrainSetup setup = step_setup(device, layers);
  testing::SingleRankCommunicator single;
  Communicator& comm = mpi ? *mpi : single;
  TrainStep step(cfg, comm, comm, setup);
  Philox rng(11 + comm.rank());
  uint64_t batch_seed = 100 + 1000 * static_cast<uint64_t>(comm.rank());  // each rank its own data
  auto next_batch = [&] { return random_ids(kBatch, kSeq + 1, setup.model->config().vocab_size, batch_seed++); };
  StepsRun out;
  for (int i = 0; i < steps; ++i) {
    testing::reset_cross_device_copies();
    out.steps.push_back(step.run(next_batch, rng, cfg.train.lr, i));
    out.copies.push_back(cross_device_copies());
  }
  for (const auto& [name, t] : setup.trainable_parameters()) {
    EXPECT_EQ(t.device(), device) << name;
    out.params[name] = t.to_vector<float>();
  }
  for (const auto& b : step.sync().buckets()) EXPECT_EQ(b.grad.device(), device);
  // Off the CPU every micro-batch went through the stager's pinned buffers and asynchronous upload.
  EXPECT_EQ(step.stager().pinned_uploads(), device == Device::CPU ? 0 : int64_t(steps) * kMicro);
  return out;
}

// Relative to the value, or absolute for values below 1 (a KL near 0 cancels digits).
double rel_diff(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1.0); }

class DeviceTrainStep : public ::testing::TestWithParam<bool> {};  // ZeRO-1 off / on

TEST_P(DeviceTrainStep, EqualsTheCpuStep) {
  const StepsRun cpu = run_steps(Device::CPU, 2, GetParam());
  const StepsRun dev = run_steps(Device::TestHost, 2, GetParam());
  ASSERT_EQ(cpu.steps.size(), dev.steps.size());
  for (size_t i = 0; i < cpu.steps.size(); ++i) {
    ASSERT_EQ(cpu.steps[i].values.size(), dev.steps[i].values.size());
    for (size_t j = 0; j < cpu.steps[i].values.size(); ++j) {
      EXPECT_EQ(cpu.steps[i].values[j].first, dev.steps[i].values[j].first);
      EXPECT_LT(rel_diff(dev.steps[i].values[j].second, cpu.steps[i].values[j].second), 1e-5)
          << "step " << i << " " << cpu.steps[i].values[j].first;
    }
    EXPECT_LT(rel_diff(dev.steps[i].grad_norm, cpu.steps[i].grad_norm), 1e-5) << "step " << i;
    EXPECT_GT(cpu.steps[i].grad_norm, 0.05) << "the step should clip";
  }
  // The objectives this step is meant to cover all ran.
  std::vector<std::string> names;
  for (const auto& [name, v] : cpu.steps[0].values) names.push_back(name);
  for (const char* want : {"loss", "ce", "kd", "draft_heads"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  ASSERT_EQ(cpu.params.size(), dev.params.size());
  bool moved = false;  // training moved the parameters (LoRA B starts at zero)
  for (const auto& [name, v] : cpu.params) {
    const std::vector<float>& d = dev.params.at(name);
    ASSERT_EQ(v.size(), d.size()) << name;
    double diff = 0, scale = 1e-12;
    for (size_t i = 0; i < v.size(); ++i) {
      diff = std::max(diff, std::abs(double(v[i]) - d[i]));
      scale = std::max(scale, std::abs(double(v[i])));
      moved = moved || (name.ends_with("lora_B") && v[i] != 0.0f);
    }
    EXPECT_LT(diff / scale, 1e-4) << name;
  }
  EXPECT_TRUE(moved);
}

TEST_P(DeviceTrainStep, CopiesOnlyTheBatchesAndTheLoggedScalars) {
  for (int64_t layers : {1, 3}) {
    const StepsRun dev = run_steps(Device::TestHost, layers, GetParam());
    for (size_t i = 0; i < dev.steps.size(); ++i) {
      const auto& c = dev.copies[i];
      // One host → device copy per micro-batch; one device → host copy per logged value and micro-batch.
      EXPECT_EQ(c.from_host, kMicro) << layers << " layers, step " << i;
      EXPECT_EQ(c.from_host_bytes, kMicro * kBatch * (kSeq + 1) * 4) << layers << " layers, step " << i;
      EXPECT_EQ(c.to_host, kMicro * static_cast<int64_t>(dev.steps[i].values.size()))
          << layers << " layers, step " << i;
    }
  }
}

// Two ranks under mpirun (ctest runs this binary with `mpirun -np 2 … --gtest_filter=DeviceTrainStepRanks.*`; run
// alone it is one rank): MPI reduces the gradient buckets in the device's memory, every rank ends with the same
// parameters, the CPU run's, and the copies stay the batches and the logged scalars.
TEST(DeviceTrainStepRanks, RanksAgreeAndMatchTheCpu) {
  std::unique_ptr<Communicator> mpi = make_communicator("mpi");
  if (const char* w = std::getenv("OMPI_COMM_WORLD_SIZE")) ASSERT_EQ(mpi->world(), std::atoi(w));
  for (bool zero : {false, true}) {
    const StepsRun cpu = run_steps(Device::CPU, 2, zero, 2, mpi.get());
    const StepsRun dev = run_steps(Device::TestHost, 2, zero, 2, mpi.get());
    for (size_t i = 0; i < cpu.steps.size(); ++i) {
      for (size_t j = 0; j < cpu.steps[i].values.size(); ++j)
        EXPECT_LT(rel_diff(dev.steps[i].values[j].second, cpu.steps[i].values[j].second), 1e-5)
            << "zero " << zero << " step " << i << " " << cpu.steps[i].values[j].first;
      EXPECT_EQ(dev.copies[i].from_host, kMicro);
      EXPECT_EQ(dev.copies[i].to_host, kMicro * static_cast<int64_t>(dev.steps[i].values.size()));
    }
    for (const auto& [name, v] : dev.params) {
      // The same parameters on every rank: rank 0's values broadcast and compared.
      std::vector<float> root = v;
      mpi->broadcast(root.data(), root.size() * sizeof(float), 0);
      EXPECT_EQ(root, v) << name << " differs between ranks (zero " << zero << ")";
      const std::vector<float>& c = cpu.params.at(name);
      double diff = 0, scale = 1e-12;
      for (size_t i = 0; i < v.size(); ++i)
        diff = std::max(diff, std::abs(double(v[i]) - c[i])), scale = std::max(scale, std::abs(double(c[i])));
      EXPECT_LT(diff / scale, 1e-4) << name;
    }
  }
}

// A snapshot written from a model on the device reads back on the CPU and onto the device again, bit-identical.
TEST(DeviceTrainStep, CheckpointsMoveBetweenDevicesBitIdentical) {
  testing::install_test_host_device();
  TrainSetup setup = step_setup(Device::TestHost, 2);
  const ExperimentConfig cfg = step_config(false);
  testing::SingleRankCommunicator comm;
  TrainStep step(cfg, comm, comm, setup);
  Philox rng(3);
  uint64_t seed = 7;
  step.run([&] { return random_ids(kBatch, kSeq + 1, setup.model->config().vocab_size, seed++); }, rng, 1e-2, 0);

  Checkpoint out;
  out.config = setup.model->config();
  out.tensors = setup.model->checkpoint_tensors();
  out.tokenizer.type = "bpe";  // a checkpoint needs some tokenizer; this one is never used
  out.tokenizer.vocab = {"a", "b", "ab"};
  out.tokenizer.merges = {"a b"};
  const std::string path = ::testing::TempDir() + "/device_checkpoint.h5";
  save_checkpoint(path, out);
  const Checkpoint in = load_checkpoint(path);
  ASSERT_EQ(in.tensors.size(), out.tensors.size());
  for (const auto& [name, t] : out.tensors) {
    ASSERT_TRUE(in.tensors.count(name)) << name;
    EXPECT_EQ(in.tensors.at(name).device(), Device::CPU);
    EXPECT_EQ(tensor_xxh64(in.tensors.at(name)), tensor_xxh64(t)) << name;
  }
  LlamaOptions o;
  o.device = Device::TestHost;
  const LlamaModel back = LlamaModel::from_tensors(in.config, in.tensors, o, path);
  for (const auto& [name, t] : back.checkpoint_tensors()) {
    EXPECT_EQ(t.device(), Device::TestHost) << name;
    EXPECT_EQ(t.to(Device::CPU).to_vector<float>(), out.tensors.at(name).to(Device::CPU).to_vector<float>()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Zero, DeviceTrainStep, ::testing::Bool(),
                         [](const auto& info) { return info.param ? std::string("zero1") : std::string("plain"); });

}  // namespace
}  // namespace linspec
