#include "serve/acceptance_calibration.h"

#include <algorithm>

#include "core/error.h"

namespace linspec {

AcceptanceCalibration::AcceptanceCalibration() {
  for (int r = 0; r < kDepths; ++r) refit(r);
}

int AcceptanceCalibration::bin_of(double p) { return std::clamp(static_cast<int>(p * kBins), 0, kBins - 1); }
int AcceptanceCalibration::depth_row(int depth) {
  LINSPEC_CHECK(depth >= 1, "acceptance calibration: depth ", depth);
  return std::min(depth, kDepths) - 1;
}

double AcceptanceCalibration::accept_probability(int depth, double p) const {
  return fitted_[depth_row(depth)][bin_of(p)];
}

void AcceptanceCalibration::observe(int depth, double p, bool accepted) {
  const int r = depth_row(depth);
  Bin& bin = bins_[r][bin_of(p)];
  bin.seen += 1;
  bin.accepted += accepted ? 1 : 0;
  bin.promised += p;
  ++observations_;
  refit(r);
}

void AcceptanceCalibration::refit(int row) {
  // Pool adjacent violators: blocks of bins merged until their rates are non-decreasing, each bin getting its
  // block's pooled rate (weighted by observations).
  struct Block {
    double accepted, seen;
    int bins;
  };
  // The depth's ratio of accepted to promised outcomes, shrunk toward 1 by kPriorWeight promised-and-accepted ones.
  double accepted = 0, promised = 0;
  for (const Bin& b : bins_[row]) accepted += b.accepted, promised += b.promised;
  const double ratio = (accepted + kPriorWeight) / (promised + kPriorWeight);
  std::vector<Block> blocks;
  for (int i = 0; i < kBins; ++i) {
    const Bin& b = bins_[row][i];
    const double prior = std::min(1.0, ratio * (i + 0.5) / kBins);
    blocks.push_back({b.accepted + kPriorWeight * prior, b.seen + kPriorWeight, 1});
    while (blocks.size() > 1) {
      const Block& hi = blocks.back();
      const Block& lo = blocks[blocks.size() - 2];
      if (lo.accepted * hi.seen <= hi.accepted * lo.seen) break;  // lo's rate <= hi's: in order
      const Block merged{lo.accepted + hi.accepted, lo.seen + hi.seen, lo.bins + hi.bins};
      blocks.pop_back();
      blocks.back() = merged;
    }
  }
  int b = 0;
  for (const Block& block : blocks)
    for (int i = 0; i < block.bins; ++i) fitted_[row][b++] = block.accepted / block.seen;
}

}  // namespace linspec
