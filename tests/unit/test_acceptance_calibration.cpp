// The acceptance calibration of dynamic trees (serve/acceptance_calibration.h): it starts from the draft's own
// probability, learns the accepted share per probability bin and depth, stays monotone in the probability, and keeps
// depths apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "serve/acceptance_calibration.h"

namespace linspec {
namespace {

constexpr int kBins = AcceptanceCalibration::kBins;

double bin_middle(int b) { return (b + 0.5) / kBins; }

TEST(AcceptanceCalibration, StartsFromTheDraftsProbability) {
  const AcceptanceCalibration cal;
  for (int depth : {1, 2, 3, 7})
    for (double p : {0.0, 0.01, 0.2, 0.5, 0.77, 0.999, 1.0})
      EXPECT_NEAR(cal.accept_probability(depth, p), p, 0.5 / kBins) << "depth " << depth << ", p " << p;
  EXPECT_EQ(cal.observations(), 0);
}

// An underconfident draft (accepted 1.6× as often as its probability says, capped at 1), observed at random
// probabilities: every bin converges to the true rate at its middle.
TEST(AcceptanceCalibration, LearnsTheAcceptedShareOfEachBin) {
  AcceptanceCalibration cal;
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto true_rate = [](double p) { return std::min(1.0, 1.6 * p); };
  for (int i = 0; i < 200000; ++i) {
    const double p = uniform(gen);
    cal.observe(1, p, uniform(gen) < true_rate(p));
  }
  EXPECT_EQ(cal.observations(), 200000);
  for (int b = 0; b < kBins; ++b) {
    // A bin's observations are spread over its width: its rate is the mean of true_rate over the bin.
    double mean = 0;
    for (int k = 0; k < 100; ++k) mean += true_rate((b + (k + 0.5) / 100) / kBins) / 100;
    EXPECT_NEAR(cal.accept_probability(1, bin_middle(b)), mean, 0.02) << "bin " << b;
  }
  // Depth 2 saw nothing: still its prior.
  for (int b = 0; b < kBins; ++b) EXPECT_DOUBLE_EQ(cal.accept_probability(2, bin_middle(b)), bin_middle(b));
}

// Outcomes in one bin move the whole depth: a draft accepted twice as often as it promised at p ≈ 0.25 is trusted
// more at every probability, long before the other bins see an outcome.
TEST(AcceptanceCalibration, AFewOutcomesRescaleEveryBin) {
  AcceptanceCalibration cal;
  for (int i = 0; i < 64; ++i) cal.observe(1, 0.25, i % 2 == 0);  // promised 16, accepted 32
  const double ratio = (32 + AcceptanceCalibration::kPriorWeight) / (16 + AcceptanceCalibration::kPriorWeight);
  EXPECT_NEAR(cal.accept_probability(1, bin_middle(2)), ratio * bin_middle(2), 1e-12);
  EXPECT_NEAR(cal.accept_probability(1, bin_middle(6)), ratio * bin_middle(6), 1e-12);
  EXPECT_DOUBLE_EQ(cal.accept_probability(1, 0.9), 1.0) << "capped at certainty";
  EXPECT_NEAR(cal.accept_probability(1, 0.25), (32 + 4 * ratio * bin_middle(4)) / 68, 1e-12) << "the observed bin";
  EXPECT_DOUBLE_EQ(cal.accept_probability(2, bin_middle(6)), bin_middle(6)) << "depth 2 saw nothing";
}

// Depths 4 and deeper share one row; 1, 2 and 3 have their own.
TEST(AcceptanceCalibration, DepthsFourAndDeeperShareTheirChances) {
  AcceptanceCalibration cal;
  for (int i = 0; i < 1000; ++i) cal.observe(9, 0.3, false);
  EXPECT_LT(cal.accept_probability(4, 0.3), 0.01);
  EXPECT_LT(cal.accept_probability(12, 0.3), 0.01);
  EXPECT_NEAR(cal.accept_probability(3, 0.3), bin_middle(static_cast<int>(0.3 * kBins)), 1e-12);
  EXPECT_THROW(cal.accept_probability(0, 0.3), std::exception);
  EXPECT_THROW(cal.observe(0, 0.3, true), std::exception);
}

// Outcomes that fall with the probability (a bin always accepted below one never accepted) are pooled: the fit is
// non-decreasing, and the two bins share their observations' accepted share.
TEST(AcceptanceCalibration, StaysMonotoneInTheProbability) {
  AcceptanceCalibration cal;
  const double lo = bin_middle(5), hi = bin_middle(6);
  for (int i = 0; i < 100; ++i) cal.observe(2, lo, true);
  for (int i = 0; i < 150; ++i) cal.observe(2, hi, false);
  double previous = 0;
  for (int k = 0; k <= 1000; ++k) {
    const double c = cal.accept_probability(2, k / 1000.0);
    EXPECT_GE(c, previous) << "p " << k / 1000.0;
    EXPECT_GE(c, 0.0);
    EXPECT_LE(c, 1.0);
    previous = c;
  }
  // Pooled: 100 accepted of 250, plus each bin's prior (4 outcomes at its middle × the depth's accepted-to-promised
  // ratio), the same for both bins. 0.40 lies between the neighbours' priors, so no other bin joins the pool.
  const double w = AcceptanceCalibration::kPriorWeight, ratio = (100 + w) / (100 * lo + 150 * hi + w);
  const double pooled = (100 + w * ratio * (lo + hi)) / (250 + 2 * w);
  ASSERT_GT(pooled, ratio * bin_middle(4));
  ASSERT_LT(pooled, ratio * bin_middle(7));
  EXPECT_NEAR(cal.accept_probability(2, lo), pooled, 1e-12);
  EXPECT_NEAR(cal.accept_probability(2, hi), pooled, 1e-12);
}

}  // namespace
}  // namespace linspec
