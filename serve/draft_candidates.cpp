#include "serve/draft_candidates.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/simd_math.h"

namespace linspec {

std::vector<int32_t> top_k_ids(const float* row, int64_t vocab, int64_t k) {
  k = std::min(k, vocab);
  std::vector<int32_t> best;
  best.reserve(k + 1);
  for (int32_t i = 0; i < vocab; ++i) {
    if (static_cast<int64_t>(best.size()) == k && !(row[i] > row[best.back()])) continue;  // ties keep lower ids
    auto pos = std::upper_bound(best.begin(), best.end(), i,
                                [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    best.insert(pos, i);
    if (static_cast<int64_t>(best.size()) > k) best.pop_back();
  }
  return best;
}

std::vector<double> candidate_probabilities(const float* row, int64_t vocab, const std::vector<int32_t>& ids) {
  const float mx = kernels::cpu::max_of(row, vocab);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < vocab; ++i) sum += kernels::cpu::exp_fast(row[i] - mx);
  std::vector<double> p;
  for (int32_t id : ids) p.push_back(std::exp(static_cast<double>(row[id] - mx)) / sum);
  return p;
}

}  // namespace linspec
