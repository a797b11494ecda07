// A draft's candidates from one row of its logits (host copies: host_logit_rows): the k most likely token ids, and
// their probabilities under the row's softmax. Shared by the heads' and the feature draft's trees.
#pragma once
#include <cstdint>
#include <vector>

namespace linspec {

// Indices of the k largest entries of row (descending, ties by lower id). One pass with a sorted list of k (k is a
// tree's branching, a handful): a sort of the 49K-entry row would cost a millisecond per head.
std::vector<int32_t> top_k_ids(const float* row, int64_t vocab, int64_t k);

// Softmax probabilities of the candidate ids within the full row (the draft's confidence in each). The vectorised
// host exp keeps this at tens of microseconds per 49K-entry row.
std::vector<double> candidate_probabilities(const float* row, int64_t vocab, const std::vector<int32_t>& ids);

}  // namespace linspec
