// What `linspec verify` checks: the model's three forms compute the same logits.
//   parallel   forward() over the whole sequence
//   recurrent  decode() one token at a time (and as a prefill block followed by a mid-sequence block)
//   tree       verify_tree() over committed prefixes of several lengths P (P < C−1, P around group boundaries),
//              against decoding each node's path token by token, and against the parallel logits along the
//              tree's main chain (which follows the sequence); then advance() by that chain and decode on.
// Errors are max over rows of max|a − b| / max|b| per logits row. Also per layer: the decode state's bytes and
// the RMS of each branch's contribution in the parallel forward (aug: local, global, conv).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/llama.h"

namespace linspec {

struct FormCheckOptions {
  int64_t len = 256;                 // tokens of the random sequence
  uint64_t seed = 0;                 // token ids and trees
  std::vector<int32_t> tree_parent;  // a fixed tree (parent array); empty: a random branching tree per P
  int64_t tree_nodes = 16;           // random trees: nodes
  int64_t tree_depth = 5;            // random trees: tokens on the longest path (≤ this)
  int64_t continue_tokens = 3;       // decoded after advance()
};

// Runs every check on `model` (batch 1, no gradients) and returns the report: keys ending in "_err" hold the
// errors; "positions" lists the committed lengths P tried; "layers" the per-layer state bytes and branch norms.
nlohmann::json check_forms(const LlamaModel& model, const FormCheckOptions& options);

// The committed lengths P worth testing for the model's attention: 0, 1, C−2 (so P < C−1), G−3 … G, 2G−3 … 2G,
// W−1, W, len/2, each kept when P ≤ len − 2.
std::vector<int64_t> tree_positions(const LlamaModel& model, int64_t len);

// Random values for every linear-attention tensor except fixed random features, so a freshly linearized model
// (zero conv, λ_global = 0) exercises every branch. Returns the number of tensors changed.
int64_t perturb_linear_attention(const LlamaModel& model, uint64_t seed, double scale = 0.3);

}  // namespace linspec
