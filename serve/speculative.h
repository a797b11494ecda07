// Speculative decoding over a LlamaModel target (docs/method.md §5), lossless: greedy output is token-for-token the
// target's greedy output, sampled output has exactly the target's distribution (serve/acceptance.h).
//
// One step for one sequence: the draft proposes candidates after the last emitted token (the root, which the target
// chose itself and has not absorbed yet) → the target verifies all of them in one tree pass (verify_tree) → the
// acceptance rule keeps a root-first path and adds one token of the target's own → the target state advances by that
// path only. Two drafters:
//   heads  Medusa-style heads on the target's hidden state at the last absorbed token propose a tree of their top-k
//          tokens: a static one (serve/tree.h), or one chosen each step from the heads' probabilities and the
//          machine's verification cost (`--tree auto`); sampling uses the exact point-mass rejection rule.
//   draft  a small draft model proposes a chain of γ tokens autoregressively (sampled from its own distribution q
//          when T > 0); exact rejection sampling accept min(1, p/q) else normalise(max(0, p − q)). The draft's state
//          is rolled back to the accepted path (KV caches truncated, recurrent states restored from per-token clones).
//   eagle  the feature draft (model/feature_draft.h) grows a tree depth by depth, EAGLE-2 style: it absorbs the
//          target's hidden states of the tokens committed last step, then expands the most probable nodes (by the
//          product of the draft's probabilities along their path) by their top-k tokens, each expanded node stepping
//          a clone of its parent's draft state; the tree verified is the best-first prefix of all nodes that
//          maximises expected tokens per millisecond (serve/decode_cost.h). Sampling uses the point-mass rule.
// Batching: a step advances several sequences at once, each at its own position with its own generation settings
// (the server's continuous batch: sequences start and leave between steps). The heads run as one GEMM over all of
// them, and every sequence's tree (or chain) is verified in one packed target pass (model/batched_decode.h
// verify_trees_hidden), whose rows equal each sequence's own verification exactly.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/draft_heads.h"
#include "model/feature_draft.h"
#include "model/generation.h"
#include "model/llama.h"
#include "serve/decode_cost.h"
#include "serve/acceptance_calibration.h"
#include "serve/tree.h"

namespace linspec {

struct SpeculativeStats {
  int64_t sequences = 0;
  int64_t steps = 0;                // target verification passes (one per sequence per step)
  int64_t new_tokens = 0;           // tokens emitted
  int64_t accepted_candidates = 0;  // draft tokens the target accepted (its own bonus / correction token excluded)
  int64_t verified_nodes = 0;       // candidate tokens the target verified, roots included
  double prefill_s = 0, decode_s = 0;
  // decode_s by phase: proposing (heads + top-k, or the draft model's steps), the target's tree pass with its LM
  // head, the acceptance rule (argmax / sampling), committing the accepted path (target advance, draft rollback).
  double draft_s = 0, verify_s = 0, accept_s = 0, commit_s = 0;
  std::vector<int64_t> accepted_histogram;  // [a] = steps that accepted a candidates
  // Dynamic trees: what the draft's own probabilities promised, 1 + the chosen nodes' path probabilities summed over
  // `expected_steps` steps. Against the measured tokens/step it says whether the draft is over- or underconfident.
  double expected_tokens = 0;
  int64_t expected_steps = 0;

  // Tokens per target pass, bonus counted: (accepted candidates + one target token per step) / steps.
  double mean_tokens_per_step() const;
  // Accepted candidates per step, bonus not counted.
  double mean_accepted_per_step() const;
  void add(const SpeculativeStats& o);
  nlohmann::json to_json() const;
};

struct SpeculativeResult {
  std::vector<int32_t> tokens;  // the new tokens only
  bool stopped = false;         // ended on a stop id (included)
};

// One sequence under speculative decoding: started by Speculator::start (prefill and the target's first token),
// advanced by Speculator::step until done().
class SpeculativeSequence {
 public:
  const std::vector<int32_t>& tokens() const { return result_.tokens; }  // every token emitted so far
  bool done() const { return done_; }
  bool stopped() const { return result_.stopped; }  // ended on a stop id (the last token)
  SpeculativeResult take_result() { return std::move(result_); }

 private:
  friend class Speculator;
  // Appends a token; false once the sequence has ended (stop id or length).
  bool emit(int32_t tok);
  // Emits the accepted candidates after the root, then the target's own token.
  void emit_step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& path, int32_t next);

  GenerationConfig cfg_;
  DecodeState target_, draft_;  // both hold every committed token except `pending_`
  int32_t pending_ = -1;        // the last emitted token: the root of the next tree
  Tensor hidden_;               // [1, D] target hidden state at the last absorbed token (heads mode)
  // eagle: the pairs (target hidden state at token t, token t+1) not yet absorbed by the draft state draft_: the
  // target's hidden states of the tokens it absorbed last step, each with the token that followed it.
  Tensor eagle_features_;              // [n, D]
  std::vector<int32_t> eagle_next_;    // [n]
  // eagle: the last pairs the draft absorbed (at most half its context window), from which a fresh draft state is
  // rebuilt when the window is full; and how far the draft's positions lag the target's since the last rebuild.
  Tensor eagle_recent_features_;
  std::vector<int32_t> eagle_recent_next_;
  int64_t eagle_offset_ = 0;
  Philox rng_;
  SpeculativeResult result_;
  bool done_ = false;
};

class Speculator {
 public:
  // Heads drafting over `tree` (its depth must not exceed the heads' count). Both must outlive the speculator.
  Speculator(const LlamaModel& target, const DraftHeads& heads, TreeSpec tree);
  // Heads drafting over a dynamic tree chosen each step (serve/tree.h dynamic_tree) from the heads' probabilities
  // and this machine's verification cost, at most `max_nodes` nodes.
  Speculator(const LlamaModel& target, const DraftHeads& heads, DecodeCost cost, int64_t max_nodes = 32);
  // Chain drafting with a draft model sharing the target's vocabulary, `gamma` tokens per step.
  Speculator(const LlamaModel& target, const LlamaModel& draft, int64_t gamma);
  // Feature-draft trees (EAGLE-2 style): at most `depth` draft steps, `expand` nodes expanded per depth by their
  // `top_k` tokens each, at most `max_nodes` verified (root included), sized by `cost`.
  struct EagleTree {
    int64_t max_nodes = 32, depth = 10, expand = 4, top_k = 8;
    // The draft's context window: the sequence length it was trained on (draft-eagle*.yaml: 256). Its linear
    // attention sums every earlier group without normalising, so past the lengths it saw its features drift (at a
    // 1K-token prompt nothing it proposed was accepted); it drafts from the last `context / 2` to `context` pairs.
    int64_t context = 256;
  };
  Speculator(const LlamaModel& target, const FeatureDraft& eagle, DecodeCost cost, EagleTree tree);

  std::string mode() const { return heads_ ? "heads" : eagle_ ? "eagle" : "draft"; }
  nlohmann::json describe() const;  // mode, tree (heads) or gamma and draft layers (draft)
  // Dynamic trees: the acceptance chances learned from the verifications so far.
  const AcceptanceCalibration& calibration() const { return calibration_; }

  // Prefills `prompt` and emits the target's first token; the sequence samples from `rng`. max_new_tokens, sampling
  // and stop ids as in generate() (max_new_tokens 0: done at once, no prefill). Adds to `stats` when given.
  SpeculativeSequence start(const std::vector<int32_t>& prompt, const GenerationConfig& cfg, Philox rng,
                            SpeculativeStats* stats = nullptr) const;
  // start() for several prompts (each with its own settings and generator) in one packed prefill pass of the target
  // (and one of a draft model): sequence i equals start(prompts[i], cfgs[i], rngs[i]) alone. The server admits
  // every new speculative request of an iteration this way.
  std::vector<SpeculativeSequence> start_batched(const std::vector<std::vector<int32_t>>& prompts,
                                                 const std::vector<GenerationConfig>& cfgs, std::vector<Philox> rngs,
                                                 SpeculativeStats* stats = nullptr) const;
  // One step for every sequence in `live` (distinct, started by this speculator, none done): drafts, one batched
  // verification pass, acceptance and commit per sequence. Adds to `stats`. `draft` false: no candidates — each
  // sequence's root goes through the batched decode step, a plain step on the same states (a feature draft keeps
  // the step's hidden state for its next absorb, a draft model decodes the root token), so drafting can stop and
  // resume between any two steps.
  void step(const std::vector<SpeculativeSequence*>& live, SpeculativeStats& stats, bool draft = true) const;
  // Whether drafting is expected to beat plain decoding in a step of `batch` sequences: with this machine's cost
  // model and the running means of tokens τ and verified nodes ν per sequence over this speculator's drafting
  // steps, τ · verify(B) > draft + verify(B · ν). True without a cost model (static trees, draft model) or before
  // the first drafting step. Under load verification stops being nearly free, and the server stops drafting.
  bool drafting_pays(int64_t batch) const;
  // Steps without drafting leave a feature draft's pairs pending (absorbing them costs a draft-layer pass per step
  // under load, when no tree is grown) until drafting resumes or a sequence has this many.
  static constexpr int64_t kMaxEagleBacklog = 64;

  // Generates for every prompt (start, then steps until all are done). Sequence i samples from
  // Philox(seed).fork(i). Adds to `stats` when given.
  std::vector<SpeculativeResult> generate(const std::vector<std::vector<int32_t>>& prompts,
                                          const GenerationConfig& cfg, SpeculativeStats* stats = nullptr) const;
  SpeculativeResult generate(const std::vector<int32_t>& prompt, const GenerationConfig& cfg,
                             SpeculativeStats* stats = nullptr) const;

 private:
  struct Proposal;  // one sequence's candidates for a step
  std::vector<Proposal> propose_heads(const std::vector<SpeculativeSequence*>& live) const;
  Proposal propose_draft(SpeculativeSequence& s) const;
  // expand false: the draft states absorb the pending pairs, and each tree is its root alone.
  std::vector<Proposal> propose_eagle(const std::vector<SpeculativeSequence*>& live, bool expand = true) const;
  // Each sequence's root alone (no drafting); a draft model's proposal with γ = 0, whose commit decodes the root.
  std::vector<Proposal> root_only(const std::vector<SpeculativeSequence*>& live) const;
  static std::vector<int32_t> root_ids(const std::vector<Proposal>& props);
  // The most pairs a sequence's feature draft has yet to absorb.
  static int64_t eagle_backlog(const std::vector<SpeculativeSequence*>& live);
  void commit_draft(SpeculativeSequence& s, Proposal& p, int64_t keep) const;
  // Eagle: a draft state that would pass its context window is rebuilt from the recent pairs (before an absorb), and
  // the absorbed pairs are remembered for that (after it). eagle_state_capacity: the positions a draft state holds.
  void window_eagle_context(SpeculativeSequence& s) const;
  void remember_eagle_pairs(SpeculativeSequence& s) const;
  int64_t eagle_state_capacity() const;
  // Teaches calibration_ one verified tree: its parents, the draft's probabilities and the accepted path.
  void calibrate(const std::vector<int32_t>& parent, const std::vector<double>& draft_prob,
                 const std::vector<int32_t>& path) const;

  const LlamaModel& target_;
  const DraftHeads* heads_ = nullptr;
  const LlamaModel* draft_ = nullptr;
  const FeatureDraft* eagle_ = nullptr;
  EagleTree eagle_tree_;
  mutable double eagle_draft_ms_ = -1;  // running mean of the draft's time per step (a fixed cost of the step)
  // Running means over drafting steps, per sequence: tokens emitted (τ) and nodes verified (ν); -1 before the first.
  mutable double mean_tokens_ = -1, mean_nodes_ = -1;
  // Dynamic trees: each node's chance of acceptance, learned from the verifications (the draft's probability is not).
  mutable AcceptanceCalibration calibration_;
  TreeSpec tree_;
  std::optional<DecodeCost> cost_;  // set: dynamic trees
  int64_t max_nodes_ = 0;
  int64_t gamma_ = 0;
};

}  // namespace linspec
