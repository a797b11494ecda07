// The feature draft's side of speculative decoding (docs/method.md §5.3): absorbing the target's features, keeping to
// the draft's context window, and growing a tree by calibrated path chance.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "core/error.h"
#include "model/op_profile.h"
#include "serve/draft_candidates.h"
#include "serve/speculative.h"
#include "serve/speculative_proposal.h"

namespace linspec {

std::vector<Speculator::Proposal> Speculator::propose_eagle(const std::vector<SpeculativeSequence*>& live,
                                                            bool expand) const {
  const int64_t B = static_cast<int64_t>(live.size()), Vd = eagle_->vocab();
  const double t0 = seconds_now();
  // 1. Each sequence's draft state absorbs its pending pairs (the last of which holds the root): one packed pass.
  std::vector<DecodeState*> states;
  std::vector<Tensor> feats;
  std::vector<int32_t> next;
  std::vector<int64_t> counts;
  for (SpeculativeSequence* s : live) {
    window_eagle_context(*s);
    states.push_back(&s->draft_);
    feats.push_back(s->eagle_features_);
    next.insert(next.end(), s->eagle_next_.begin(), s->eagle_next_.end());
    counts.push_back(static_cast<int64_t>(s->eagle_next_.size()));
  }
  const Tensor absorbed = eagle_->absorb(states, feats.size() == 1 ? feats[0] : ops::concat(feats, 0), next, counts);
  // The draft has now read one pair per committed target position (since its last rebuild): a lost or repeated pair
  // would desynchronise it (still lossless, but drafting from the wrong context).
  for (SpeculativeSequence* s : live) {
    LINSPEC_CHECK(s->draft_.position() + s->eagle_offset_ == s->target_.position(), "feature draft at position ",
                  s->draft_.position(), " + ", s->eagle_offset_, ", its target at ", s->target_.position());
    remember_eagle_pairs(*s);
  }
  if (!expand) {  // absorbing only: each tree is its root
    for (SpeculativeSequence* s : live) s->eagle_features_ = Tensor(), s->eagle_next_.clear();
    return root_only(live);
  }
  // 2. Grow each sequence's tree depth by depth. A node: its token, parent, depth and log-probability of its path;
  // an expanded node also holds its predicted feature and the draft state after its path.
  struct Node {
    int32_t token, parent, depth;
    double p, logp;  // the draft's probability given the parent; log of the calibrated chance of the path
  };
  struct Frontier {
    int64_t b;                           // sequence
    int32_t node;                        // index into nodes[b]
    Tensor predicted;                    // [1, D]
    std::shared_ptr<DecodeState> state;  // null: the sequence's committed draft state (the root)
  };
  std::vector<std::vector<Node>> nodes(B);
  std::vector<Frontier> frontier;
  // A node is worth verifying when its path probability (the tokens it is expected to add) exceeds what its share of
  // the pass costs at the rate of a one-token step; children are no likelier than their parent, so a node below that
  // bar is not expanded either (on a GPU, where nodes are nearly free, the bar is near 0 and trees grow to their
  // limits).
  const double step1_ms = (cost_->verify_ms_at(B) + std::max(eagle_draft_ms_, 0.0)) / static_cast<double>(B);
  const double node_ms = std::max(0.0, cost_->verify_ms_at(B * max_nodes_) - cost_->verify_ms_at(B)) /
                         static_cast<double>(B * max_nodes_ - B + (max_nodes_ == 1));
  const double min_logp = std::log(std::max(1e-4, node_ms / std::max(step1_ms, 1e-6)));
  int64_t row = 0;
  for (int64_t b = 0; b < B; ++b) {
    row += counts[b];
    nodes[b].push_back({live[b]->pending_, -1, 0, 1.0, 0.0});
    frontier.push_back({b, 0, absorbed.slice(0, row - 1, row), nullptr});
  }
  for (int64_t depth = 1; depth <= eagle_tree_.depth && !frontier.empty(); ++depth) {
    std::vector<Tensor> preds;
    for (const Frontier& f : frontier) preds.push_back(f.predicted);
    const Tensor rows =
        host_logit_rows(eagle_->logits(preds.size() == 1 ? preds[0].contiguous() : ops::concat(preds, 0)), Vd);
    std::vector<std::vector<int32_t>> children(B);  // this depth's new nodes per sequence
    for (size_t i = 0; i < frontier.size(); ++i) {
      const Frontier& f = frontier[i];
      const float* r = rows.data<float>() + static_cast<int64_t>(i) * Vd;
      const std::vector<int32_t> ids = top_k_ids(r, Vd, eagle_tree_.top_k);
      const std::vector<double> p = candidate_probabilities(r, Vd, ids);
      for (size_t c = 0; c < ids.size(); ++c) {
        children[f.b].push_back(static_cast<int32_t>(nodes[f.b].size()));
        const double chance = calibration_.accept_probability(static_cast<int>(depth), p[c]);
        nodes[f.b].push_back({eagle_->token(ids[c]), f.node, static_cast<int32_t>(depth), p[c],
                              nodes[f.b][f.node].logp + std::log(std::max(chance, 1e-30))});
      }
    }
    if (depth == eagle_tree_.depth) break;
    // Expand the `expand` most probable new nodes of each sequence: each steps a clone of its parent's state.
    std::vector<Frontier> next_frontier;
    std::vector<DecodeState*> step_states;
    std::vector<Tensor> step_feats;
    std::vector<int32_t> step_ids;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int32_t>& ch = children[b];
      const int64_t keep = std::min<int64_t>(eagle_tree_.expand, static_cast<int64_t>(ch.size()));
      std::partial_sort(ch.begin(), ch.begin() + keep, ch.end(),
                        [&](int32_t x, int32_t y) { return nodes[b][x].logp > nodes[b][y].logp; });
      for (int64_t c = 0; c < keep; ++c) {
        const Node& n = nodes[b][ch[c]];
        if (n.logp < min_logp) break;  // too unlikely to be verified: drafting deeper below it is wasted
        const Frontier* parent = nullptr;
        for (const Frontier& f : frontier)
          if (f.b == b && f.node == n.parent) parent = &f;
        auto state = std::make_shared<DecodeState>(parent->state ? parent->state->clone() : live[b]->draft_.clone());
        step_states.push_back(state.get());
        step_feats.push_back(parent->predicted);
        step_ids.push_back(n.token);
        next_frontier.push_back({b, ch[c], Tensor(), std::move(state)});
      }
    }
    if (next_frontier.empty()) break;
    const Tensor predicted =
        eagle_->absorb(step_states, step_feats.size() == 1 ? step_feats[0].contiguous() : ops::concat(step_feats, 0),
                       step_ids, std::vector<int64_t>(step_ids.size(), 1));
    for (size_t i = 0; i < next_frontier.size(); ++i)
      next_frontier[i].predicted = predicted.slice(0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
    frontier = std::move(next_frontier);
  }
  for (SpeculativeSequence* s : live) s->eagle_features_ = Tensor(), s->eagle_next_.clear();
  const double draft_ms = 1e3 * (seconds_now() - t0);
  eagle_draft_ms_ = eagle_draft_ms_ < 0 ? draft_ms : 0.9 * eagle_draft_ms_ + 0.1 * draft_ms;
  // 3. Per sequence, the best-first prefix of its nodes (path probability order is prefix-closed; ties keep
  // shallower nodes first) that maximises expected tokens per millisecond of the step's share of the pass.
  std::vector<Proposal> out(B);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<Node>& all = nodes[b];
    std::vector<int32_t> order(all.size() - 1);
    std::iota(order.begin(), order.end(), 1);
    std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
      return all[x].logp > all[y].logp || (all[x].logp == all[y].logp && all[x].depth < all[y].depth);
    });
    order.resize(std::min<size_t>(order.size(), static_cast<size_t>(max_nodes_ - 1)));
    std::vector<double> path_probs;
    for (int32_t n : order) path_probs.push_back(std::exp(all[n].logp));
    const int64_t best =
        best_prefix_nodes(path_probs,
                          [&](int64_t nodes) {
                            return (cost_->verify_ms_at(B * nodes) + eagle_draft_ms_) / static_cast<double>(B);
                          }) -
        1;
    // The chosen nodes in depth order (parents first), renumbered.
    std::vector<int32_t> chosen(order.begin(), order.begin() + best);
    out[b].expected_tokens = 1.0 + std::accumulate(path_probs.begin(), path_probs.begin() + best, 0.0);
    std::stable_sort(chosen.begin(), chosen.end(), [&](int32_t x, int32_t y) { return all[x].depth < all[y].depth; });
    std::vector<int32_t> index(all.size(), -1);
    index[0] = 0;
    Proposal& p = out[b];
    p.tokens = {all[0].token};
    p.parent = {-1};
    p.draft_prob = {1.0};
    for (int32_t n : chosen) {
      index[n] = static_cast<int32_t>(p.tokens.size());
      p.tokens.push_back(all[n].token);
      p.parent.push_back(index[all[n].parent]);
      p.draft_prob.push_back(all[n].p);
    }
  }
  return out;
}

int64_t Speculator::eagle_backlog(const std::vector<SpeculativeSequence*>& live) {
  size_t most = 0;
  for (const SpeculativeSequence* s : live) most = std::max(most, s->eagle_next_.size());
  return static_cast<int64_t>(most);
}

int64_t Speculator::eagle_state_capacity() const {
  // A state holds at most the window after an absorb (window_eagle_context), then a tree's depth of clone steps; the
  // slack is a backlog's worth.
  return eagle_tree_.context + kMaxEagleBacklog + eagle_tree_.depth + 2;
}

void Speculator::remember_eagle_pairs(SpeculativeSequence& s) const {
  // The last `context / 2` of the remembered and pending pairs: the history a rebuilt draft state starts from.
  const int64_t keep = eagle_tree_.context / 2;
  const int64_t recent = static_cast<int64_t>(s.eagle_recent_next_.size());
  const int64_t total = recent + static_cast<int64_t>(s.eagle_next_.size()), from = std::max<int64_t>(0, total - keep);
  if (total == 0) return;
  const Tensor features =
      recent > 0 ? ops::concat({s.eagle_recent_features_, s.eagle_features_}, 0) : s.eagle_features_;
  s.eagle_recent_features_ = features.slice(0, from, total).contiguous();
  s.eagle_recent_next_.insert(s.eagle_recent_next_.end(), s.eagle_next_.begin(), s.eagle_next_.end());
  s.eagle_recent_next_.erase(s.eagle_recent_next_.begin(), s.eagle_recent_next_.begin() + from);
}

void Speculator::window_eagle_context(SpeculativeSequence& s) const {
  const int64_t reach = s.draft_.position() + static_cast<int64_t>(s.eagle_next_.size());  // after the absorb
  if (reach <= eagle_tree_.context) return;
  // A fresh state at position 0 absorbs the last `context / 2` pairs instead: the draft sees a context like those it
  // was trained on. The target's position is unchanged, so the lag grows by the pairs left out.
  remember_eagle_pairs(s);
  s.eagle_features_ = std::move(s.eagle_recent_features_);
  s.eagle_next_ = std::move(s.eagle_recent_next_);
  s.eagle_recent_features_ = Tensor();
  s.eagle_recent_next_.clear();
  s.eagle_offset_ += reach - static_cast<int64_t>(s.eagle_next_.size());
  s.draft_ = eagle_->new_state(eagle_state_capacity());
}

}  // namespace linspec
