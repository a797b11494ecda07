#include "data/loader.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace linspec {

WindowLoader::WindowLoader(const TokenSplit& split, int seq_len, int rank, int world, uint64_t seed, bool shuffle)
    : split_(&split), seq_len_(seq_len), rank_(rank), world_(world), seed_(seed), shuffle_(shuffle) {
  const int64_t n = static_cast<int64_t>(split.tokens.size());
  const int64_t windows = n > seq_len ? (n - 1) / seq_len : 0;
  per_rank_ = windows / world;
  if (per_rank_ == 0)
    throw_input_error(split.source.empty() ? std::string("data") : split.source, ": ", n, " tokens give ", windows,
                      " windows of seq_len ", seq_len, " + 1, fewer than the ", world,
                      " rank(s) need; use a smaller data.seq_len or more data");
  build_epoch();
}

void WindowLoader::build_epoch() {
  const int64_t windows = per_rank_ * world_;
  std::vector<uint64_t> order(static_cast<size_t>((static_cast<int64_t>(split_->tokens.size()) - 1) / seq_len_));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle_) {
    Philox rng = Philox(seed_).fork(state_.epoch);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  }
  mine_.clear();
  for (int64_t i = rank_; i < windows; i += world_) mine_.push_back(order[static_cast<size_t>(i)] * seq_len_);
}

void WindowLoader::restore(const LoaderState& s) {
  state_ = s;
  build_epoch();
}

Tensor WindowLoader::next(int batch) {
  Tensor out = Tensor::empty({batch, seq_len_ + 1}, DType::I32);
  int32_t* dst = out.data<int32_t>();
  for (int b = 0; b < batch; ++b) {
    if (state_.cursor >= static_cast<uint64_t>(per_rank_)) {
      state_.epoch++;
      state_.cursor = 0;
      build_epoch();
    }
    const uint64_t start = mine_[state_.cursor++];
    for (int t = 0; t <= seq_len_; ++t) dst[b * (seq_len_ + 1) + t] = static_cast<int32_t>(split_->tokens[start + t]);
  }
  return out;
}

}  // namespace linspec
