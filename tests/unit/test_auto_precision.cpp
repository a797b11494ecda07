// train.precision "auto": bf16 only where this machine's GEMMs are clearly faster in bf16, agreed by every rank.
#include <gtest/gtest.h>

#include <sstream>

#include "core/cpu_features.h"
#include "tests/unit/fake_communicator.h"
#include "trainer/train_setup.h"

namespace linspec::trainer {
namespace {

TEST(AutoPrecision, Bf16OnlyWhenClearlyFasterThanFp32) {
  struct Case {
    double fp32, bf16;
    bool pays;
  };
  // The box that motivated the probe (native AVX512-BF16, oneDNN bf16 slower), a box where bf16 doubles the rate,
  // equal rates, and a gain too small to pay for bf16's rounding.
  for (const Case& c : {Case{313, 170, false}, Case{300, 620, true}, Case{300, 300, false}, Case{300, 320, false},
                        Case{300, 340, true}})
    EXPECT_EQ(bf16_training_pays(c.fp32, c.bf16), c.pays) << c.fp32 << " vs " << c.bf16;
}

// Rank 0 of two; the other rank's vote on bf16 is `other`.
class TwoRanks final : public Communicator {
 public:
  explicit TwoRanks(double other) : other_(other) {}
  int rank() const override { return 0; }
  int world() const override { return 2; }
  std::string backend() const override { return "two"; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double* data, size_t count) override {
    ASSERT_EQ(count, 1u);
    data[0] += other_;
    ++votes;
  }
  void reduce_scatter_sum(const float*, float*, size_t) override {}
  void allgather(const float*, float*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  int votes = 0;

 private:
  double other_;
};

TEST(AutoPrecision, ExplicitPrecisionIsKept) {
  for (const char* p : {"fp32", "bf16"}) {
    ExperimentConfig cfg;
    cfg.train.precision = p;
    TwoRanks world(0);
    std::ostringstream log;
    resolve_auto_precision(cfg, Device::CPU, &world, log);
    EXPECT_EQ(cfg.train.precision, p);
    EXPECT_EQ(world.votes, 0);
    EXPECT_TRUE(log.str().empty());
  }
}

TEST(AutoPrecision, OneRankAgainstBf16MakesEveryRankFp32) {
  ExperimentConfig cfg;
  cfg.train.precision = "auto";
  TwoRanks world(0);  // the other rank measured fp32 faster
  std::ostringstream log;
  resolve_auto_precision(cfg, Device::CPU, &world, log);
  EXPECT_EQ(cfg.train.precision, "fp32");
  EXPECT_EQ(world.votes, cpu_has_native_bf16() ? 1 : 0);  // without native bf16 there is nothing to measure
  EXPECT_NE(log.str().find("precision auto -> fp32"), std::string::npos) << log.str();
}

TEST(AutoPrecision, SettlesAutoForEveryUse) {
  ExperimentConfig cfg;
  cfg.train.precision = "auto";
  TwoRanks world(1);  // the other rank votes bf16: this rank's own measurement decides
  std::ostringstream log;
  resolve_auto_precision(cfg, Device::CPU, &world, log);
  if (!cpu_has_native_bf16()) EXPECT_EQ(cfg.train.precision, "fp32");
  EXPECT_TRUE(cfg.train.precision == "fp32" || cfg.train.precision == "bf16") << cfg.train.precision;
  EXPECT_EQ(training_precision(cfg, Device::CPU), cfg.train.precision);

  ExperimentConfig gpu;
  gpu.train.precision = "auto";
  resolve_auto_precision(gpu, Device::CUDA, nullptr, log);  // decided without measuring (nothing runs on the GPU)
  EXPECT_EQ(gpu.train.precision, "bf16");
}

}  // namespace
}  // namespace linspec::trainer
