#include "serve/acceptance.h"

#include <algorithm>

#include "core/error.h"

namespace linspec {
namespace {

// children[i]: the nodes whose parent is i, in node order.
std::vector<std::vector<int32_t>> children_of(const std::vector<int32_t>& parent) {
  std::vector<std::vector<int32_t>> ch(parent.size());
  for (size_t i = 1; i < parent.size(); ++i) {
    LINSPEC_CHECK(parent[i] >= 0 && parent[i] < static_cast<int32_t>(i), "acceptance: node ", i, " has parent ",
                  parent[i]);
    ch[parent[i]].push_back(static_cast<int32_t>(i));
  }
  return ch;
}

// Walks the tree from the root, choosing the next token at each node with `pick`.
template <typename Pick>
Acceptance walk(const std::vector<int32_t>& tokens, const std::vector<int32_t>& parent, Pick pick) {
  LINSPEC_CHECK(!tokens.empty() && tokens.size() == parent.size() && parent[0] == -1,
                "acceptance: a tree of ", tokens.size(), " tokens and ", parent.size(), " parents rooted at node 0");
  const auto children = children_of(parent);
  Acceptance a;
  int32_t node = 0;
  for (;;) {
    a.path.push_back(node);
    const int32_t x = pick(node);
    int32_t next = -1;
    for (int32_t c : children[node])
      if (tokens[c] == x) {
        next = c;
        break;
      }
    if (next < 0) {
      a.next_token = x;
      return a;
    }
    node = next;
  }
}

}  // namespace

int32_t sample_from(const std::vector<double>& p, double u) {
  double total = 0;
  for (double x : p) total += x;
  double cum = 0;
  int32_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    last = static_cast<int32_t>(i);
    cum += p[i] / total;
    if (u < cum) return last;
  }
  LINSPEC_CHECK(last >= 0, "sample_from: no probability mass");
  return last;
}

Acceptance accept_greedy(const std::vector<int32_t>& tokens, const std::vector<int32_t>& parent, const float* logits,
                         int64_t vocab) {
  return walk(tokens, parent, [&](int32_t node) {
    const float* row = logits + static_cast<int64_t>(node) * vocab;
    return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
  });
}

Acceptance accept_sampled_tree(const std::vector<int32_t>& tokens, const std::vector<int32_t>& parent,
                               const float* logits, int64_t vocab, const SamplingConfig& sampling, Philox& rng) {
  if (sampling.temperature == 0.0) return accept_greedy(tokens, parent, logits, vocab);
  return walk(tokens, parent, [&](int32_t node) {
    return choose_token(logits + static_cast<int64_t>(node) * vocab, vocab, sampling, rng);
  });
}

Acceptance accept_chain_rejection(const std::vector<int32_t>& tokens, const float* logits, int64_t vocab,
                                  const std::vector<std::vector<double>>& q, const SamplingConfig& sampling,
                                  Philox& rng) {
  const int64_t gamma = static_cast<int64_t>(tokens.size()) - 1;
  LINSPEC_CHECK(gamma >= 0 && static_cast<int64_t>(q.size()) == gamma, "chain rejection: ", tokens.size(),
                " tokens and ", q.size(), " draft distributions");
  std::vector<int32_t> chain(tokens.size());
  for (size_t i = 0; i < chain.size(); ++i) chain[i] = static_cast<int32_t>(i) - 1;
  if (sampling.temperature == 0.0) return accept_greedy(tokens, chain, logits, vocab);
  Acceptance a{{0}, -1};
  for (int64_t i = 1; i <= gamma; ++i) {
    const std::vector<double> p = sampling_distribution(logits + (i - 1) * vocab, vocab, sampling);
    const std::vector<double>& qi = q[i - 1];
    LINSPEC_CHECK(static_cast<int64_t>(qi.size()) == vocab, "chain rejection: draft distribution of size ", qi.size());
    const int32_t d = tokens[i];
    const double u = rng.uniform();
    // Accept when u < p/q, i.e. u·q < p (no division; q(d) > 0 since d was drawn from q).
    if (u * qi[d] < p[d]) {
      a.path.push_back(static_cast<int32_t>(i));
      continue;
    }
    std::vector<double> residual(vocab);
    double mass = 0;
    for (int64_t v = 0; v < vocab; ++v) mass += residual[v] = std::max(0.0, p[v] - qi[v]);
    a.next_token = sample_from(mass > 0 ? residual : p, rng.uniform());  // mass 0 only when p == q up to rounding
    return a;
  }
  a.next_token = sample_from(sampling_distribution(logits + gamma * vocab, vocab, sampling), rng.uniform());
  return a;
}

}  // namespace linspec
