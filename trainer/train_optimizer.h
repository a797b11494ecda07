// AdamW over the synchronised gradients, whole or sharded (ZeRO-1).
//
// Without ZeRO every rank holds the full optimizer state and updates every parameter from the mean gradient.
// With ZeRO-1 each rank owns one contiguous shard of every gradient bucket (trainer/grad_sync.h): its AdamW sees
// one "piece" per parameter overlapping that shard (a view of the parameter's storage, with the reduced shard as its
// gradient), keeps m and v for those pieces only, and after the update GradSync::allgather_params() spreads the new
// values. The state saved in snapshots is always the full, unsharded one (names as AdamW::state() gives them for the
// whole parameters), so a snapshot resumes with or without ZeRO.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/adamw.h"
#include "trainer/grad_sync.h"

namespace linspec::trainer {

class TrainOptimizer {
 public:
  TrainOptimizer(GradSync& sync, const AdamWConfig& config);

  // One update from the synchronised (and clipped) gradients; ZeRO: then gathers the parameters. Collective.
  // grad_scale: the clipping factor, applied as AdamW reads each gradient.
  void step(double lr, double grad_scale = 1.0);
  int64_t step_count() const { return adamw_->step_count(); }

  // The full state ("m/<name>", "v/<name>", "updates"). Collective with ZeRO (every rank gets it).
  std::map<std::string, Tensor> full_state();
  // Restores full_state()'s result (from a snapshot). InputError naming the tensor when it does not fit.
  void load_full_state(int64_t step_count, const std::map<std::string, Tensor>& state);

 private:
  struct Piece {
    size_t param;          // index into names_ / params_ (canonical order)
    int64_t begin, end;    // element range within the parameter
  };
  GradSync& sync_;
  std::vector<std::string> names_;  // canonical order: AdamW's construction order without ZeRO
  std::vector<Tensor> params_;
  std::vector<Piece> pieces_;       // ZeRO only, in AdamW slot order
  std::unique_ptr<AdamW> adamw_;
};

}  // namespace linspec::trainer
