#include "serve/speculative.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/cpu/simd_math.h"
#include "serve/acceptance.h"

namespace linspec {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Indices of the k largest entries of row (descending, ties by lower id): the heads' candidates. One pass with a
// sorted list of k (k is a tree's branching, a handful): a sort of the 49K-entry row would cost a millisecond per head.
std::vector<int32_t> top_k(const float* row, int64_t vocab, int64_t k) {
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

// Candidates per depth a dynamic tree may choose from (its branching is decided by probabilities, not by this).
constexpr int64_t kDynamicTopK = 8;

// Softmax probabilities of the candidate ids within the full row (the heads' confidence in each).
// The rows are host copies (host_logit_rows); the vectorised host exp keeps this at tens of microseconds per 49K-entry
// row.
std::vector<double> candidate_probabilities(const float* row, int64_t vocab, const std::vector<int32_t>& ids) {
  const float mx = kernels::cpu::max_of(row, vocab);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < vocab; ++i) sum += kernels::cpu::exp_fast(row[i] - mx);
  std::vector<double> p;
  for (int32_t id : ids) p.push_back(std::exp(static_cast<double>(row[id] - mx)) / sum);
  return p;
}

// Adds the seconds since the last lap to `into` (the phases of a speculative step).
class PhaseClock {
 public:
  void lap(double& into) {
    const double t = now_s();
    into += t - last_;
    last_ = t;
  }

 private:
  double last_ = now_s();
};

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
  if (accepted_histogram.size() < o.accepted_histogram.size()) accepted_histogram.resize(o.accepted_histogram.size());
  for (size_t i = 0; i < o.accepted_histogram.size(); ++i) accepted_histogram[i] += o.accepted_histogram[i];
}
nlohmann::json SpeculativeStats::to_json() const {
  auto per_step_ms = [&](double s) { return steps > 0 ? 1e3 * s / static_cast<double>(steps) : 0.0; };
  return {{"sequences", sequences},
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
}

// ---- one sequence ----

struct Speculator::Sequence {
  DecodeState target, draft;  // both hold every committed token except `pending`
  int32_t pending = -1;       // the last emitted token: the root of the next tree
  Tensor hidden;              // [1, D] target hidden state at the last absorbed token (heads mode)
  Philox rng;
  SpeculativeResult result;
  bool done = false;

  // Appends a token; false once the sequence has ended (stop id or length).
  bool emit(int32_t tok, const GenerationConfig& cfg) {
    result.tokens.push_back(tok);
    if (std::find(cfg.stop_ids.begin(), cfg.stop_ids.end(), tok) != cfg.stop_ids.end()) result.stopped = true;
    done = result.stopped || static_cast<int64_t>(result.tokens.size()) >= cfg.max_new_tokens;
    return !done;
  }
  // Emits the accepted candidates after the root, then the target's own token.
  void emit_step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& path, int32_t next,
                 const GenerationConfig& cfg) {
    for (size_t i = 1; i < path.size(); ++i)
      if (!emit(tokens[path[i]], cfg)) return;
    if (emit(next, cfg)) pending = next;
  }
};

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

nlohmann::json Speculator::describe() const {
  nlohmann::json j{{"mode", mode()}};
  if (heads_ && cost_) {
    j["tree"] = {{"name", "auto"}, {"max_nodes", max_nodes_}, {"depth", tree_.max_depth}, {"cost", cost_->to_json()}};
    j["heads"] = draft_heads_config_to_json(heads_->config());
  } else if (heads_) {
    j["tree"] = tree_.describe();
    j["heads"] = draft_heads_config_to_json(heads_->config());
  } else {
    j["gamma"] = gamma_;
    j["draft_layers"] = draft_->num_layers();
  }
  return j;
}

void Speculator::prefill(Sequence& s, const std::vector<int32_t>& prompt, int64_t max_len,
                         const GenerationConfig& cfg) const {
  if (prompt.empty()) throw_input_error("speculative generate: a prompt is empty");
  const int64_t V = target_.config().vocab_size;
  s.target = target_.new_decode_state(1, max_len);
  Tensor logits;
  if (heads_) {
    s.hidden = target_.decode_hidden(s.target, ids_tensor(prompt), true).view({1, target_.config().hidden_size});
    logits = target_.lm_head(s.hidden);
  } else {
    logits = target_.decode(s.target, ids_tensor(prompt), true);
    s.draft = draft_->new_decode_state(1, max_len);
    draft_->decode(s.draft, ids_tensor(prompt), true);
  }
  const Tensor row = host_logit_rows(logits, V);
  if (s.emit(choose_token(row.data<float>(), V, cfg.sampling, s.rng), cfg)) s.pending = s.result.tokens.back();
}

void Speculator::heads_step(std::vector<Sequence*>& live, const GenerationConfig& cfg, SpeculativeStats& stats) const {
  NoGradGuard no_grad;
  PhaseClock clock;
  const int64_t B = static_cast<int64_t>(live.size()), D = target_.config().hidden_size,
                V = target_.config().vocab_size;
  // All live sequences' heads in one batch: hidden [B, D] -> per depth d, top-k candidates per sequence.
  Tensor h = Tensor::empty({B, D}, live[0]->hidden.dtype());
  for (int64_t b = 0; b < B; ++b) h.slice(0, b, b + 1).copy_from(live[b]->hidden);
  std::vector<std::vector<std::vector<int32_t>>> cand(tree_.max_depth);  // [depth-1][b] -> top-k ids
  std::vector<std::vector<std::vector<double>>> probs(B);                // dynamic: [b][depth-1] -> their probs
  const std::vector<Tensor> head_logits = heads_->all_logits(h, tree_.max_depth);
  for (int64_t d = 1; d <= tree_.max_depth; ++d) {
    const Tensor rows = host_logit_rows(head_logits[d - 1], V);
    for (int64_t b = 0; b < B; ++b) {
      const float* row = rows.data<float>() + b * V;
      cand[d - 1].push_back(top_k(row, V, cost_ ? kDynamicTopK : tree_.top_k[d - 1]));
      if (cost_) probs[b].push_back(candidate_probabilities(row, V, cand[d - 1].back()));
    }
  }
  auto step_ms = [&](int64_t nodes) { return cost_->verify_ms_at(nodes) + cost_->draft_ms; };
  clock.lap(stats.draft_s);
  for (int64_t b = 0; b < B; ++b) {
    Sequence& s = *live[b];
    const TreeSpec dynamic = cost_ ? dynamic_tree(probs[b], max_nodes_, step_ms) : TreeSpec{};
    const TreeSpec& tree = cost_ ? dynamic : tree_;
    std::vector<int32_t> tokens(tree.nodes());
    tokens[0] = s.pending;
    for (int64_t n = 1; n < tree.nodes(); ++n) tokens[n] = cand[tree.depth[n] - 1][b][tree.rank[n]];
    const Tensor hidden = target_.verify_tree_hidden(s.target, ids_tensor(tokens), tree.parent);
    const Tensor logits = host_logit_rows(target_.lm_head(hidden), V);
    clock.lap(stats.verify_s);
    const Acceptance a = accept_sampled_tree(tokens, tree.parent, logits.data<float>(), V, cfg.sampling, s.rng);
    clock.lap(stats.accept_s);
    target_.advance(s.target, ids_tensor(tokens), tree.parent, a.path);
    s.hidden = hidden.slice(0, a.path.back(), a.path.back() + 1).contiguous();
    clock.lap(stats.commit_s);
    ++stats.steps;
    stats.verified_nodes += tree.nodes();
    stats.accepted_candidates += static_cast<int64_t>(a.path.size()) - 1;
    if (stats.accepted_histogram.size() < a.path.size()) stats.accepted_histogram.resize(a.path.size());
    ++stats.accepted_histogram[a.path.size() - 1];
    s.emit_step(tokens, a.path, a.next_token, cfg);
  }
}

void Speculator::draft_step(Sequence& s, const GenerationConfig& cfg, SpeculativeStats& stats) const {
  NoGradGuard no_grad;
  PhaseClock clock;
  const int64_t V = target_.config().vocab_size;
  const int64_t remaining = cfg.max_new_tokens - static_cast<int64_t>(s.result.tokens.size());
  const int64_t gamma = std::max<int64_t>(1, std::min(gamma_, remaining));
  const bool sampled = cfg.sampling.temperature > 0;
  const int64_t p0 = s.draft.position();
  // Recurrent layers cannot be truncated: keep a clone after each proposal (KV caches are truncated instead).
  std::vector<bool> is_cache;
  for (const auto& l : s.draft.layers) is_cache.push_back(dynamic_cast<const KVCache*>(l.get()) != nullptr);
  const bool needs_clones = std::find(is_cache.begin(), is_cache.end(), false) != is_cache.end();
  std::vector<std::vector<std::unique_ptr<AttentionState>>> snaps(gamma + 1);

  std::vector<int32_t> tokens{s.pending};
  std::vector<std::vector<double>> q;
  for (int64_t i = 1; i <= gamma; ++i) {
    const Tensor row = host_logit_rows(draft_->decode(s.draft, ids_tensor({tokens.back()}), true), V);
    if (sampled) {
      q.push_back(sampling_distribution(row.data<float>(), V, cfg.sampling));
      tokens.push_back(sample_from(q.back(), s.rng.uniform()));
    } else {
      tokens.push_back(choose_token(row.data<float>(), V, cfg.sampling, s.rng));
    }
    if (needs_clones && i < gamma)
      for (size_t l = 0; l < s.draft.layers.size(); ++l)
        snaps[i].push_back(is_cache[l] ? nullptr : s.draft.layers[l]->clone());
  }
  clock.lap(stats.draft_s);
  const std::vector<int32_t> parent = chain_parents(tokens.size());
  const Tensor logits = host_logit_rows(target_.verify_tree(s.target, ids_tensor(tokens), parent), V);
  clock.lap(stats.verify_s);
  const Acceptance a = sampled ? accept_chain_rejection(tokens, logits.data<float>(), V, q, cfg.sampling, s.rng)
                               : accept_greedy(tokens, parent, logits.data<float>(), V);
  clock.lap(stats.accept_s);
  target_.advance(s.target, ids_tensor(tokens), parent, a.path);

  // The draft absorbed root, d_1 .. d_{γ-1}; it must hold root, d_1 .. d_m for m accepted candidates.
  const int64_t keep = static_cast<int64_t>(a.path.size());  // m + 1 tokens
  if (keep == gamma + 1) {
    draft_->decode(s.draft, ids_tensor({tokens.back()}), true);
  } else if (keep < gamma) {
    for (size_t l = 0; l < s.draft.layers.size(); ++l) {
      if (is_cache[l])
        static_cast<KVCache&>(*s.draft.layers[l]).truncate(p0 + keep);
      else
        s.draft.layers[l] = std::move(snaps[keep][l]);
    }
  }
  clock.lap(stats.commit_s);
  ++stats.steps;
  stats.verified_nodes += static_cast<int64_t>(tokens.size());
  stats.accepted_candidates += keep - 1;
  if (stats.accepted_histogram.size() < static_cast<size_t>(keep)) stats.accepted_histogram.resize(keep);
  ++stats.accepted_histogram[keep - 1];
  s.emit_step(tokens, a.path, a.next_token, cfg);
}

std::vector<SpeculativeResult> Speculator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                                    const GenerationConfig& cfg, SpeculativeStats* stats_out) const {
  cfg.sampling.validate();
  if (cfg.max_new_tokens < 0) throw_input_error("speculative generate: max_new_tokens must be >= 0");
  SpeculativeStats stats;
  stats.sequences = static_cast<int64_t>(prompts.size());
  std::vector<Sequence> seqs(prompts.size());
  const int64_t slack = (heads_ ? tree_.max_depth : gamma_) + 2;
  const double t0 = now_s();
  if (cfg.max_new_tokens > 0)
    for (size_t i = 0; i < prompts.size(); ++i) {
      seqs[i].rng = Philox(cfg.sampling.seed).fork(i);
      prefill(seqs[i], prompts[i], static_cast<int64_t>(prompts[i].size()) + cfg.max_new_tokens + slack, cfg);
    }
  const double t1 = now_s();
  for (;;) {
    std::vector<Sequence*> live;
    for (auto& s : seqs)
      if (!s.done && cfg.max_new_tokens > 0) live.push_back(&s);
    if (live.empty()) break;
    if (heads_)
      heads_step(live, cfg, stats);
    else
      for (Sequence* s : live) draft_step(*s, cfg, stats);
  }
  stats.prefill_s = t1 - t0;
  stats.decode_s = now_s() - t1;
  std::vector<SpeculativeResult> out;
  for (auto& s : seqs) {
    stats.new_tokens += static_cast<int64_t>(s.result.tokens.size());
    out.push_back(std::move(s.result));
  }
  if (stats_out) stats_out->add(stats);
  return out;
}

SpeculativeResult Speculator::generate(const std::vector<int32_t>& prompt, const GenerationConfig& cfg,
                                       SpeculativeStats* stats) const {
  return std::move(generate(std::vector<std::vector<int32_t>>{prompt}, cfg, stats)[0]);
}

}  // namespace linspec
