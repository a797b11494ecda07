// Verification rules of speculative decoding (docs/method.md §5): which candidate tokens the target accepts and which
// token it adds itself. All of them leave the output distribution exactly the target's:
//   greedy            follow, from the root, the child whose token is the target's argmax; output = AR greedy.
//   sampled tree      (deterministic top-k candidates, e.g. from heads) draw x ~ p at the current node, move to the
//                     child whose token is x, else x is the new token. This is rejection sampling with point-mass
//                     proposals (accept child c w.p. p'(c), else remove c and renormalise), so x ~ p exactly.
//   chain rejection   (draft-model chain with proposal distributions q_i) accept d_i w.p. min(1, p_i(d_i)/q_i(d_i));
//                     at the first rejection draw from normalise(max(0, p_i − q_i)); all accepted: draw from p_{γ+1}.
// p is the target's sampling distribution (temperature, top-k, top-p applied: model/generation.h).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "model/generation.h"

namespace linspec {

struct Acceptance {
  std::vector<int32_t> path;  // accepted nodes, root first (the root is always accepted)
  int32_t next_token = -1;    // the target's own token after the path (bonus or correction)
};

// tokens[i], parent[i] of N nodes (node 0 the root); logits [N, V] rows (f32), row i = target's logits after node i.
Acceptance accept_greedy(const std::vector<int32_t>& tokens, const std::vector<int32_t>& parent, const float* logits,
                         int64_t vocab);
Acceptance accept_sampled_tree(const std::vector<int32_t>& tokens, const std::vector<int32_t>& parent,
                               const float* logits, int64_t vocab, const SamplingConfig& sampling, Philox& rng);
// A chain root, d_1 .. d_γ: tokens has γ+1 entries, logits γ+1 rows, q[i-1] = the draft distribution d_i was drawn from.
Acceptance accept_chain_rejection(const std::vector<int32_t>& tokens, const float* logits, int64_t vocab,
                                  const std::vector<std::vector<double>>& q, const SamplingConfig& sampling,
                                  Philox& rng);

// One draw from a probability vector with one uniform (inverse CDF; the last non-zero entry absorbs rounding).
int32_t sample_from(const std::vector<double>& p, double u);

}  // namespace linspec
