// Fixed-window loader over a token split: windows of seq_len+1 tokens (inputs + shifted targets) at
// stride seq_len, shuffled per epoch by a seeded permutation, dealt round-robin so ranks see disjoint
// windows. Its whole state is (epoch, cursor): saved in snapshots, restored on resume.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "data/token_shards.h"

namespace linspec {

struct LoaderState {
  uint64_t epoch = 0;
  uint64_t cursor = 0;  // windows consumed by this rank in this epoch
};

class WindowLoader {
 public:
  WindowLoader(const TokenSplit& split, int seq_len, int rank, int world, uint64_t seed, bool shuffle = true);

  // Next `batch` windows as i32 [batch, seq_len + 1]; wraps into the next epoch when one ends.
  Tensor next(int batch);
  int64_t windows_per_rank() const { return per_rank_; }
  LoaderState state() const { return state_; }
  void restore(const LoaderState& s);

 private:
  void build_epoch();
  const TokenSplit* split_;
  int seq_len_, rank_, world_;
  uint64_t seed_;
  bool shuffle_;
  int64_t per_rank_ = 0;
  std::vector<uint64_t> mine_;  // window starts for this rank in this epoch
  LoaderState state_;
};

}  // namespace linspec
