#pragma once
// How likely a draft's candidate is to be accepted, learned from the verifications themselves (docs/method.md §5.6).
//
// A dynamic tree is sized by its nodes' acceptance chances, and a draft's probability is not one: a draft distilled
// to the target's distribution gives its top token the target's probability of it (say 0.4), while greedy
// verification accepts it whenever it is the target's argmax (say 70% of the time). Trees sized on the raw
// probabilities are then too small. Every verification tells, for each node whose parent was accepted, whether the
// node was: those outcomes, binned by the draft's probability and the node's depth, give a calibrated chance
// (monotone in the probability). A bin with few outcomes leans on a prior: the raw probability scaled by its depth's
// accepted-to-promised ratio over all bins, which a few dozen outcomes already pin down. The tree shape changes; the
// output does not (verification stays exact), so the calibration only decides how much is verified.
#include <array>
#include <cstdint>
#include <vector>

namespace linspec {

class AcceptanceCalibration {
 public:
  static constexpr int kBins = 16;   // over the draft's probability in [0, 1]
  static constexpr int kDepths = 4;  // depths 1, 2, 3 and 4+ (a draft gets less reliable the further it looks)
  // The prior counts as this many observations in each bin (and in each depth's ratio) until outcomes outweigh it.
  static constexpr double kPriorWeight = 4.0;

  AcceptanceCalibration();
  // The chance that a node at `depth` (>= 1), which the draft gave probability `p` given its parent, is accepted
  // given that its parent is. Non-decreasing in p; in [0, 1].
  double accept_probability(int depth, double p) const;
  // One verified node whose parent was accepted: was it?
  void observe(int depth, double p, bool accepted);
  // Verified nodes seen so far.
  int64_t observations() const { return observations_; }

 private:
  static int bin_of(double p);
  static int depth_row(int depth);
  void refit(int row);  // the monotone fit of one depth row (pool adjacent violators over its bins)

  struct Bin {
    double accepted = 0, seen = 0, promised = 0;  // outcomes: accepted, observed, the draft's probabilities summed
  };
  std::array<std::array<Bin, kBins>, kDepths> bins_{};
  std::array<std::array<double, kBins>, kDepths> fitted_{};
  int64_t observations_ = 0;
};

}  // namespace linspec
