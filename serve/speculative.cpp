#include "serve/speculative.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "model/batched_decode.h"
#include "model/op_profile.h"
#include "serve/acceptance.h"
#include "serve/draft_candidates.h"
#include "serve/speculative_proposal.h"

namespace linspec {
namespace {

// Candidates per depth a dynamic tree may choose from (its branching is decided by probabilities, not by this).
constexpr int64_t kDynamicTopK = 8;

// Adds the seconds since the last lap to `into` (the phases of a speculative step).
class PhaseClock {
 public:
  void lap(double& into) {
    const double t = seconds_now();
    into += t - last_;
    last_ = t;
  }

 private:
  double last_ = seconds_now();
};

void check_config(const GenerationConfig& cfg) {
  cfg.sampling.validate();
  if (cfg.max_new_tokens < 0) throw_input_error("speculative generate: max_new_tokens must be >= 0");
}

Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())});
}

std::vector<int32_t> chain_parents(size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(i) - 1;
  return p;
}

}  // namespace

// ---- stats ----

double SpeculativeStats::mean_tokens_per_step() const {
  return steps > 0 ? static_cast<double>(accepted_candidates + steps) / static_cast<double>(steps) : 0.0;
}
double SpeculativeStats::mean_accepted_per_step() const {
  return steps > 0 ? static_cast<double>(accepted_candidates) / static_cast<double>(steps) : 0.0;
}
void SpeculativeStats::add(const SpeculativeStats& o) {
  sequences += o.sequences, steps += o.steps, new_tokens += o.new_tokens;
  accepted_candidates += o.accepted_candidates, verified_nodes += o.verified_nodes;
  prefill_s += o.prefill_s, decode_s += o.decode_s;
  draft_s += o.draft_s, verify_s += o.verify_s, accept_s += o.accept_s, commit_s += o.commit_s;
  expected_tokens += o.expected_tokens, expected_steps += o.expected_steps;
  if (accepted_histogram.size() < o.accepted_histogram.size()) accepted_histogram.resize(o.accepted_histogram.size());
  for (size_t i = 0; i < o.accepted_histogram.size(); ++i) accepted_histogram[i] += o.accepted_histogram[i];
}
nlohmann::json SpeculativeStats::to_json() const {
  auto per_step_ms = [&](double s) { return steps > 0 ? 1e3 * s / static_cast<double>(steps) : 0.0; };
  nlohmann::json j = {{"sequences", sequences},
                      {"steps", steps},
                      {"new_tokens", new_tokens},
                      {"accepted_candidates", accepted_candidates},
                      {"verified_nodes", verified_nodes},
                      {"mean_accepted_tokens_per_step", mean_tokens_per_step()},
                      {"bonus_token_counted", true},
                      {"mean_accepted_candidates_per_step", mean_accepted_per_step()},
                      {"accepted_histogram", accepted_histogram},
                      {"prefill_s", prefill_s},
                      {"decode_s", decode_s},
                      {"phase_ms_per_step",
                       {{"draft", per_step_ms(draft_s)},
                        {"verify", per_step_ms(verify_s)},
                        {"accept", per_step_ms(accept_s)},
                        {"commit", per_step_ms(commit_s)},
                        {"other", per_step_ms(decode_s - draft_s - verify_s - accept_s - commit_s)}}}};
  if (expected_steps > 0) j["draft_expected_tokens_per_step"] = expected_tokens / static_cast<double>(expected_steps);
  return j;
}

// ---- one sequence ----

bool SpeculativeSequence::emit(int32_t tok) {
  result_.tokens.push_back(tok);
  if (std::find(cfg_.stop_ids.begin(), cfg_.stop_ids.end(), tok) != cfg_.stop_ids.end()) result_.stopped = true;
  done_ = result_.stopped || static_cast<int64_t>(result_.tokens.size()) >= cfg_.max_new_tokens;
  return !done_;
}

void SpeculativeSequence::emit_step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& path,
                                    int32_t next) {
  for (size_t i = 1; i < path.size(); ++i)
    if (!emit(tokens[path[i]])) return;
  if (emit(next)) pending_ = next;
}

Speculator::Speculator(const LlamaModel& target, const DraftHeads& heads, TreeSpec tree)
    : target_(target), heads_(&heads), tree_(std::move(tree)) {
  if (tree_.max_depth > heads.count())
    throw_input_error("tree '", tree_.name, "' is ", tree_.max_depth, " deep but the checkpoint has ", heads.count(),
                      " draft heads");
}

Speculator::Speculator(const LlamaModel& target, const DraftHeads& heads, DecodeCost cost, int64_t max_nodes)
    : target_(target), heads_(&heads), cost_(std::move(cost)), max_nodes_(max_nodes) {
  if (max_nodes < 1 || max_nodes > 256)
    throw_input_error("--tree auto: max nodes must be in [1, 256], got ", max_nodes);
  tree_.name = "auto";
  tree_.max_depth = heads.count();
}

Speculator::Speculator(const LlamaModel& target, const LlamaModel& draft, int64_t gamma)
    : target_(target), draft_(&draft), gamma_(gamma) {
  if (gamma < 1 || gamma > 64) throw_input_error("speculative draft: gamma must be in [1, 64], got ", gamma);
  if (draft.config().vocab_size != target.config().vocab_size)
    throw_input_error("speculative draft: the draft's vocabulary (", draft.config().vocab_size,
                      ") differs from the target's (", target.config().vocab_size, ")");
}

Speculator::Speculator(const LlamaModel& target, const FeatureDraft& eagle, DecodeCost cost, EagleTree tree)
    : target_(target), eagle_(&eagle), eagle_tree_(tree), cost_(std::move(cost)), max_nodes_(tree.max_nodes) {
  if (tree.max_nodes < 1 || tree.max_nodes > 256)
    throw_input_error("--tree auto: max nodes must be in [1, 256], got ", tree.max_nodes);
  if (tree.depth < 1 || tree.depth > 32 || tree.expand < 1 || tree.expand > 64 || tree.top_k < 1 || tree.top_k > 64)
    throw_input_error("speculative eagle: depth must be in [1, 32], expand and top_k in [1, 64]; got depth ", tree.depth,
                      ", expand ", tree.expand, ", top_k ", tree.top_k);
  tree_.name = "auto";
  tree_.max_depth = tree.depth;
}

nlohmann::json Speculator::describe() const {
  nlohmann::json j{{"mode", mode()}};
  const DType draft_format = heads_   ? heads_->inference_weights()
                             : eagle_ ? eagle_->inference_weights()
                                      : draft_->inference_weights();
  j["draft_weights"] = draft_format == DType::Q8 ? "int8" : dtype_name(draft_format);
  if (heads_ && cost_) {
    j["tree"] = {{"name", "auto"}, {"max_nodes", max_nodes_}, {"depth", tree_.max_depth}, {"cost", cost_->to_json()}};
    j["heads"] = draft_heads_config_to_json(heads_->config());
  } else if (heads_) {
    j["tree"] = tree_.describe();
    j["heads"] = draft_heads_config_to_json(heads_->config());
  } else if (eagle_) {
    j["tree"] = {{"name", "auto"},
                 {"max_nodes", max_nodes_},
                 {"depth", eagle_tree_.depth},
                 {"expand", eagle_tree_.expand},
                 {"top_k", eagle_tree_.top_k},
                 {"cost", cost_->to_json()}};
    j["draft_vocab"] = eagle_->vocab();
  } else {
    j["gamma"] = gamma_;
    j["draft_layers"] = draft_->num_layers();
  }
  return j;
}

SpeculativeSequence Speculator::start(const std::vector<int32_t>& prompt, const GenerationConfig& cfg, Philox rng,
                                      SpeculativeStats* stats) const {
  return std::move(start_batched({prompt}, {cfg}, {rng}, stats)[0]);
}

std::vector<SpeculativeSequence> Speculator::start_batched(const std::vector<std::vector<int32_t>>& prompts,
                                                           const std::vector<GenerationConfig>& cfgs,
                                                           std::vector<Philox> rngs, SpeculativeStats* stats) const {
  LINSPEC_CHECK(cfgs.size() == prompts.size() && rngs.size() == prompts.size(), "speculative start: ", prompts.size(),
                " prompts, ", cfgs.size(), " configs, ", rngs.size(), " generators");
  std::vector<SpeculativeSequence> out(prompts.size());
  std::vector<size_t> live;  // the sequences that prefill (max_new_tokens 0: done at once)
  for (size_t i = 0; i < prompts.size(); ++i) {
    check_config(cfgs[i]);
    out[i].cfg_ = cfgs[i];
    out[i].rng_ = rngs[i];
    if (stats) ++stats->sequences;
    if (cfgs[i].max_new_tokens == 0) {
      out[i].done_ = true;
      continue;
    }
    if (prompts[i].empty()) throw_input_error("speculative generate: a prompt is empty");
    live.push_back(i);
  }
  if (live.empty()) return out;
  NoGradGuard no_grad;
  const double t0 = seconds_now();
  const int64_t V = target_.config().vocab_size, D = target_.config().hidden_size;
  std::vector<DecodeState*> states, draft_states;
  std::vector<std::vector<int32_t>> live_prompts;
  for (size_t i : live) {
    SpeculativeSequence& s = out[i];
    const int64_t max_len = static_cast<int64_t>(prompts[i].size()) + cfgs[i].max_new_tokens +
                            (heads_ || eagle_ ? tree_.max_depth : gamma_) + 2;
    s.target_ = target_.new_decode_state(1, max_len);
    if (eagle_) s.draft_ = eagle_->new_state(eagle_state_capacity());
    if (draft_) s.draft_ = draft_->new_decode_state(1, max_len);
    states.push_back(&s.target_), draft_states.push_back(&s.draft_), live_prompts.push_back(prompts[i]);
  }
  // One packed pass over every prompt; each prompt's last row gives its first token.
  Tensor hidden;
  profiled_phase("prefill", false, [&] {
    hidden = prefill_batched_hidden(target_, states, live_prompts);  // [Σ P, D]
    if (draft_) prefill_batched(*draft_, draft_states, live_prompts);
  });
  std::vector<Tensor> last_rows;
  int64_t end = 0;
  for (size_t j = 0; j < live.size(); ++j) {
    SpeculativeSequence& s = out[live[j]];
    const auto P = static_cast<int64_t>(live_prompts[j].size());
    end += P;
    last_rows.push_back(hidden.slice(0, end - 1, end));
    if (heads_) s.hidden_ = hidden.slice(0, end - 1, end).contiguous().view({1, D});
    if (eagle_) {
      // Every prompt position's hidden state pairs with the token after it (the last with the first new token).
      s.eagle_features_ = hidden.slice(0, end - P, end).contiguous();
      s.eagle_next_.assign(live_prompts[j].begin() + 1, live_prompts[j].end());
    }
  }
  Tensor rows;
  profiled_phase("prefill", false, [&] {
    rows = host_logit_rows(
        target_.lm_head(last_rows.size() == 1 ? last_rows[0].contiguous() : ops::concat(last_rows, 0)), V);
  });
  for (size_t j = 0; j < live.size(); ++j) {
    SpeculativeSequence& s = out[live[j]];
    const int32_t first = choose_token(rows.data<float>() + static_cast<int64_t>(j) * V, V, s.cfg_.sampling, s.rng_);
    if (eagle_) s.eagle_next_.push_back(first);
    if (s.emit(first)) s.pending_ = first;
    if (stats) ++stats->new_tokens;
  }
  if (stats) stats->prefill_s += seconds_now() - t0;
  return out;
}

std::vector<Speculator::Proposal> Speculator::propose_heads(const std::vector<SpeculativeSequence*>& live) const {
  const int64_t B = static_cast<int64_t>(live.size()), D = target_.config().hidden_size,
                V = target_.config().vocab_size;
  // All sequences' heads in one batch: hidden [B, D] -> per depth d, top-k candidates per sequence.
  Tensor h = Tensor::empty({B, D}, live[0]->hidden_.dtype(), live[0]->hidden_.device());
  for (int64_t b = 0; b < B; ++b) h.slice(0, b, b + 1).copy_from(live[b]->hidden_);
  std::vector<std::vector<std::vector<int32_t>>> cand(tree_.max_depth);  // [depth-1][b] -> top-k ids
  std::vector<std::vector<std::vector<double>>> probs(B);                // dynamic: [b][depth-1] -> their probs
  const std::vector<Tensor> head_logits = heads_->all_logits(h, tree_.max_depth);
  for (int64_t d = 1; d <= tree_.max_depth; ++d) {
    const Tensor rows = host_logit_rows(head_logits[d - 1], V);
    for (int64_t b = 0; b < B; ++b) {
      const float* row = rows.data<float>() + b * V;
      cand[d - 1].push_back(top_k_ids(row, V, cost_ ? kDynamicTopK : tree_.top_k[d - 1]));
      if (cost_) probs[b].push_back(candidate_probabilities(row, V, cand[d - 1].back()));
    }
  }
  // The tree is shaped by calibrated acceptance chances; the raw probabilities are kept for the calibration's update.
  std::vector<std::vector<std::vector<double>>> chances = probs;
  for (auto& per_depth : chances)
    for (size_t d = 0; d < per_depth.size(); ++d)
      for (double& p : per_depth[d]) p = calibration_.accept_probability(static_cast<int>(d) + 1, p);
  // A dynamic tree is sized by the cost of the whole pass: with B sequences verifying n nodes each, a sequence's
  // share of it (B = 1: the single-sequence cost).
  auto step_ms = [&](int64_t nodes) {
    return (cost_->verify_ms_at(B * nodes) + cost_->draft_ms) / static_cast<double>(B);
  };
  std::vector<Proposal> out(B);
  for (int64_t b = 0; b < B; ++b) {
    const TreeSpec dynamic = cost_ ? dynamic_tree(chances[b], max_nodes_, step_ms) : TreeSpec{};
    const TreeSpec& tree = cost_ ? dynamic : tree_;
    if (cost_) {
      out[b].expected_tokens = dynamic.expected_tokens;
      out[b].draft_prob = {1.0};
      for (int64_t n = 1; n < tree.nodes(); ++n) out[b].draft_prob.push_back(probs[b][tree.depth[n] - 1][tree.rank[n]]);
    }
    out[b].parent = tree.parent;
    out[b].tokens.resize(tree.nodes());
    out[b].tokens[0] = live[b]->pending_;
    for (int64_t n = 1; n < tree.nodes(); ++n) out[b].tokens[n] = cand[tree.depth[n] - 1][b][tree.rank[n]];
  }
  return out;
}

Speculator::Proposal Speculator::propose_draft(SpeculativeSequence& s) const {
  const int64_t V = target_.config().vocab_size;
  Proposal p;
  const int64_t remaining = s.cfg_.max_new_tokens - static_cast<int64_t>(s.result_.tokens.size());
  p.gamma = std::max<int64_t>(1, std::min(gamma_, remaining));
  p.p0 = s.draft_.position();
  // Recurrent layers cannot be truncated: keep a clone after each proposal (KV caches are truncated instead).
  for (const auto& l : s.draft_.layers) p.is_cache.push_back(dynamic_cast<const KVCache*>(l.get()) != nullptr);
  const bool needs_clones = std::find(p.is_cache.begin(), p.is_cache.end(), false) != p.is_cache.end();
  p.snaps.resize(p.gamma + 1);
  const bool sampled = s.cfg_.sampling.temperature > 0;
  p.tokens = {s.pending_};
  for (int64_t i = 1; i <= p.gamma; ++i) {
    const Tensor row = host_logit_rows(draft_->decode(s.draft_, ids_tensor({p.tokens.back()}), true), V);
    if (sampled) {
      p.q.push_back(sampling_distribution(row.data<float>(), V, s.cfg_.sampling));
      p.tokens.push_back(sample_from(p.q.back(), s.rng_.uniform()));
    } else {
      p.tokens.push_back(choose_token(row.data<float>(), V, s.cfg_.sampling, s.rng_));
    }
    if (needs_clones && i < p.gamma)
      for (size_t l = 0; l < s.draft_.layers.size(); ++l)
        p.snaps[i].push_back(p.is_cache[l] ? nullptr : s.draft_.layers[l]->clone());
  }
  p.parent = chain_parents(p.tokens.size());
  return p;
}

std::vector<Speculator::Proposal> Speculator::root_only(const std::vector<SpeculativeSequence*>& live) const {
  std::vector<Proposal> out(live.size());
  for (size_t b = 0; b < live.size(); ++b) {
    out[b].tokens = {live[b]->pending_};
    out[b].parent = {-1};
    if (draft_) out[b].p0 = live[b]->draft_.position();  // γ = 0: the commit decodes the root (keep == γ + 1)
  }
  return out;
}

std::vector<int32_t> Speculator::root_ids(const std::vector<Proposal>& props) {
  std::vector<int32_t> out;
  for (const Proposal& p : props) out.push_back(p.tokens.front());
  return out;
}

bool Speculator::drafting_pays(int64_t batch) const {
  if (!cost_ || mean_tokens_ < 0 || batch < 1) return true;
  const double draft_ms = eagle_ ? std::max(eagle_draft_ms_, 0.0) : cost_->draft_ms;
  const auto rows = static_cast<int64_t>(std::llround(static_cast<double>(batch) * mean_nodes_));
  return mean_tokens_ * cost_->verify_ms_at(batch) > draft_ms + cost_->verify_ms_at(std::max(rows, batch));
}

void Speculator::commit_draft(SpeculativeSequence& s, Proposal& p, int64_t keep) const {
  // The draft absorbed root, d_1 .. d_{γ-1}; it must hold root, d_1 .. d_m for m = keep − 1 accepted candidates.
  if (keep == p.gamma + 1) {
    draft_->decode(s.draft_, ids_tensor({p.tokens.back()}), true);
  } else if (keep < p.gamma) {
    for (size_t l = 0; l < s.draft_.layers.size(); ++l) {
      if (p.is_cache[l])
        static_cast<KVCache&>(*s.draft_.layers[l]).truncate(p.p0 + keep);
      else
        s.draft_.layers[l] = std::move(p.snaps[keep][l]);
    }
  }
}

void Speculator::calibrate(const std::vector<int32_t>& parent, const std::vector<double>& draft_prob,
                           const std::vector<int32_t>& path) const {
  // Parents precede children, so depths fill in one pass. A node tells something only when its parent was accepted.
  std::vector<int32_t> depth(parent.size(), 0);
  std::vector<bool> accepted(parent.size(), false);
  for (int32_t n : path) accepted[n] = true;
  for (size_t n = 1; n < parent.size(); ++n) {
    depth[n] = depth[parent[n]] + 1;
    if (accepted[parent[n]]) calibration_.observe(depth[n], draft_prob[n], accepted[n]);
  }
}

void Speculator::step(const std::vector<SpeculativeSequence*>& live, SpeculativeStats& stats, bool draft) const {
  if (live.empty()) return;
  for (const SpeculativeSequence* s : live)
    LINSPEC_CHECK(s && !s->done_ && s->pending_ >= 0, "speculative step: a sequence that is done or not started");
  NoGradGuard no_grad;
  const double t0 = seconds_now();
  PhaseClock clock;
  const int64_t V = target_.config().vocab_size;
  std::vector<Proposal> props;
  // The phases are also op-profile regions (eval --decode --profile): "draft/gemm.mlp" is the draft's, not the
  // target's.
  profiled_phase("draft", false, [&] {
    if (eagle_ && (draft || eagle_backlog(live) >= kMaxEagleBacklog)) {
      props = propose_eagle(live, draft);  // absorbs every pending pair first
    } else if (!draft) {
      props = root_only(live);
    } else if (heads_) {
      props = propose_heads(live);
    } else {
      for (SpeculativeSequence* s : live) props.push_back(propose_draft(*s));
    }
  });
  clock.lap(stats.draft_s);
  // Every sequence's candidates in one target pass.
  std::vector<DecodeState*> states;
  std::vector<std::vector<int32_t>> ids, parents;
  for (size_t b = 0; b < live.size(); ++b)
    states.push_back(&live[b]->target_), ids.push_back(props[b].tokens), parents.push_back(props[b].parent);
  // Without drafting, every tree is its root alone: the batched decode step (each sequence's mixer in its step form,
  // one kernel call over all of them) appends it to the state, which is what verifying and then committing it does.
  Tensor hidden, logits;
  profiled_phase("verify", false, [&] {
    hidden = draft ? verify_trees_hidden(target_, states, ids, parents)
                   : decode_batched_hidden(target_, states, root_ids(props));
    logits = host_logit_rows(target_.lm_head(hidden), V);
  });
  clock.lap(stats.verify_s);
  int64_t offset = 0;
  double step_tokens = 0;  // accepted paths' lengths: tokens emitted, bonus included
  for (size_t b = 0; b < live.size(); ++b) {
    SpeculativeSequence& s = *live[b];
    Proposal& p = props[b];
    const float* rows = logits.data<float>() + offset * V;
    Acceptance a;
    profiled_phase("accept", false, [&] {
      a = heads_ || eagle_ ? accept_sampled_tree(p.tokens, p.parent, rows, V, s.cfg_.sampling, s.rng_)
          : s.cfg_.sampling.temperature > 0 ? accept_chain_rejection(p.tokens, rows, V, p.q, s.cfg_.sampling, s.rng_)
                                            : accept_greedy(p.tokens, p.parent, rows, V);
    });
    clock.lap(stats.accept_s);
    profiled_phase("commit", false, [&] {
      if (draft) target_.advance(s.target_, ids_tensor(p.tokens), p.parent, a.path);
      const int64_t last = offset + a.path.back();
      if (heads_) {
        s.hidden_ = hidden.slice(0, last, last + 1).contiguous();
      } else if (eagle_) {
        // The target's hidden states along the accepted path, each paired with the token that follows it.
        std::vector<Tensor> rows;
        for (size_t i = 0; i < a.path.size(); ++i) {
          const int64_t r = offset + a.path[i];
          rows.push_back(hidden.slice(0, r, r + 1));
          s.eagle_next_.push_back(i + 1 < a.path.size() ? p.tokens[a.path[i + 1]] : a.next_token);
        }
        // Appended: steps without drafting leave their pairs for the next absorb (one packed pass over them all).
        if (s.eagle_features_.defined()) rows.insert(rows.begin(), s.eagle_features_);
        s.eagle_features_ = rows.size() == 1 ? rows[0].contiguous() : ops::concat(rows, 0);
      } else {
        commit_draft(s, p, static_cast<int64_t>(a.path.size()));
      }
    });
    clock.lap(stats.commit_s);
    ++stats.steps;
    stats.verified_nodes += static_cast<int64_t>(p.tokens.size());
    stats.accepted_candidates += static_cast<int64_t>(a.path.size()) - 1;
    step_tokens += static_cast<double>(a.path.size());
    if (stats.accepted_histogram.size() < a.path.size()) stats.accepted_histogram.resize(a.path.size());
    ++stats.accepted_histogram[a.path.size() - 1];
    if (p.expected_tokens > 0) stats.expected_tokens += p.expected_tokens, ++stats.expected_steps;
    if (!p.draft_prob.empty()) calibrate(p.parent, p.draft_prob, a.path);
    const size_t before = s.result_.tokens.size();
    s.emit_step(p.tokens, a.path, a.next_token);
    stats.new_tokens += static_cast<int64_t>(s.result_.tokens.size() - before);
    offset += static_cast<int64_t>(p.tokens.size());
  }
  if (draft) {
    const double n = static_cast<double>(live.size()), tokens = step_tokens / n, nodes = static_cast<double>(offset) / n;
    mean_tokens_ = mean_tokens_ < 0 ? tokens : 0.9 * mean_tokens_ + 0.1 * tokens;
    mean_nodes_ = mean_nodes_ < 0 ? nodes : 0.9 * mean_nodes_ + 0.1 * nodes;
  }
  stats.decode_s += seconds_now() - t0;
}

std::vector<SpeculativeResult> Speculator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                                    const GenerationConfig& cfg, SpeculativeStats* stats_out) const {
  check_config(cfg);
  SpeculativeStats stats;
  std::vector<Philox> rngs;
  for (size_t i = 0; i < prompts.size(); ++i) rngs.push_back(Philox(cfg.sampling.seed).fork(i));
  std::vector<SpeculativeSequence> seqs =
      start_batched(prompts, std::vector<GenerationConfig>(prompts.size(), cfg), std::move(rngs), &stats);
  for (;;) {
    std::vector<SpeculativeSequence*> live;
    for (auto& s : seqs)
      if (!s.done()) live.push_back(&s);
    if (live.empty()) break;
    step(live, stats);
  }
  std::vector<SpeculativeResult> out;
  for (auto& s : seqs) out.push_back(s.take_result());
  if (stats_out) stats_out->add(stats);
  return out;
}

SpeculativeResult Speculator::generate(const std::vector<int32_t>& prompt, const GenerationConfig& cfg,
                                       SpeculativeStats* stats) const {
  return std::move(generate(std::vector<std::vector<int32_t>>{prompt}, cfg, stats)[0]);
}

}  // namespace linspec
