// What a speculative step proposes for one sequence (serve/speculative.cpp builds it for heads and draft models,
// serve/speculative_eagle.cpp for the feature draft). Internal to the speculator.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "serve/speculative.h"

namespace linspec {

// One sequence's candidates for a step: a tree rooted at its pending token (heads), or a chain (draft model) with
// what committing it needs.
struct Speculator::Proposal {
  std::vector<int32_t> tokens, parent;
  std::vector<std::vector<double>> q;  // draft, sampled: the draft's distribution at each proposal
  int64_t p0 = 0, gamma = 0;           // draft: its position before the step, proposals made
  std::vector<bool> is_cache;          // draft: which layers are KV caches (truncated) or recurrent (restored)
  std::vector<std::vector<std::unique_ptr<AttentionState>>> snaps;  // draft: recurrent layers after proposal i
  double expected_tokens = 0;      // dynamic trees: 1 + the chosen nodes' calibrated path probabilities (0: unknown)
  std::vector<double> draft_prob;  // dynamic trees: per node (root 1), the draft's probability of it given its parent
};

}  // namespace linspec
