// The form-agreement suite every attention preset must pass, through the whole model (tiny random LLaMA, GQA
// 3:1, the middle layer kept softmax): parallel == recurrent at every position through three groups and a partial
// one; tree == sequential at committed lengths P with P mod G in {0, G−3, G−2, G−1} and P < C−1, trees of depth
// 1–5; advance then continue == sequential. The math runs in f64 so a wrong index shows up far above rounding.
// A test file includes this header and instantiates `Mixers` with the preset names it wants checked
// (tests/unit/test_linear_mixers.cpp: every built-in preset; test_attention_registry.cpp: the toy preset).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "attention/spec.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/batched_decode.h"
#include "model/llama.h"
#include "tests/unit/format_test_util.h"
#include "tests/unit/llama_test_util.h"

namespace linspec::mixer_forms {

using testing::max_rel_err;
using testing::random_ids;
using testing::tiny_llama_config;

constexpr int64_t kG = 5, kC = 3;     // group size and conv taps: C − 1 = 2 tokens of conv history
constexpr int64_t kLen = 3 * kG + 2;  // three complete groups and a partial one
constexpr double kTol = 1e-9;         // f64

// Small sizes so the tiny model crosses groups, chunks, windows and conv taps within a few tokens; each preset
// gets those of its options (from the preset table) that appear here.
AttentionSpec spec_for(const std::string& preset) {
  const std::map<std::string, std::string> small = {{"group_size", std::to_string(kG)},
                                                    {"conv_taps", std::to_string(kC)},
                                                    {"chunk_size", "4"},
                                                    {"features", "8"},
                                                    {"seed", "11"},
                                                    {"max_len", "64"},
                                                    {"norm_weight", "true"},
                                                    {"window", "3"}};
  AttentionSpec s;
  s.preset = preset;
  for (const auto& o : attention_preset(preset, "test").options)
    if (small.count(o.name)) s.options[o.name] = small.at(o.name);
  return s;
}

// Moves every new tensor away from its init (zero conv, λ_global = 0, identity maps) so each branch matters.
void randomize_mixers(const LlamaModel& m, uint64_t seed) {
  Philox rng(seed);
  for (int64_t i = 0; i < m.num_layers(); ++i)
    for (const auto& [name, t] : m.layer(i).mixer->persistent_tensors()) {
      if (name == "la.omega") continue;  // fixed random features
      std::vector<double> v = t.to_vector<double>();
      for (double& x : v) x += 0.3 * rng.normal();
      Tensor(t).copy_from(Tensor::from_vector(v, t.shape()));
    }
}

LlamaModel model_with_spec(AttentionSpec s, DType dtype = DType::F64, uint64_t seed = 3) {
  ModelConfig c = tiny_llama_config();
  c.num_layers = 3;
  LlamaOptions o;
  o.dtype = dtype;
  o.requires_grad = false;
  LlamaModel m = LlamaModel::random(c, seed, o);
  testing::randomize_biases(m, seed + 1);
  if (!s.is_softmax()) s.keep_softmax_layers = {1};  // a hybrid: the middle layer keeps softmax
  m.set_attention_spec(s);
  randomize_mixers(m, seed + 2);
  return m;
}

LlamaModel model_with(const std::string& preset, DType dtype = DType::F64, uint64_t seed = 3) {
  return model_with_spec(spec_for(preset), dtype, seed);
}

Tensor row_slice(const Tensor& logits, int64_t t) { return logits.slice(1, t, t + 1).contiguous(); }

class Mixers : public ::testing::TestWithParam<std::string> {};

TEST_P(Mixers, ParallelEqualsRecurrentAtEveryPosition) {
  const LlamaModel m = model_with(GetParam());
  EXPECT_EQ(m.layer(0).mixer->kind(), GetParam());
  const Tensor ids = random_ids(2, kLen, m.config().vocab_size, 5);
  NoGradGuard no_grad;
  const Tensor parallel = m.forward(ids);

  DecodeState one = m.new_decode_state(2, kLen);
  for (int64_t t = 0; t < kLen; ++t) {
    const Tensor step = m.decode(one, ids.slice(1, t, t + 1).contiguous());
    EXPECT_LT(max_rel_err(step, row_slice(parallel, t)), kTol) << "position " << t;
  }
  // A prefill from 0, then a block that starts mid-group, then single tokens.
  DecodeState blocks = m.new_decode_state(2, kLen);
  const Tensor a = m.decode(blocks, ids.slice(1, 0, 7).contiguous());
  const Tensor b = m.decode(blocks, ids.slice(1, 7, 13).contiguous());
  EXPECT_LT(max_rel_err(a, parallel.slice(1, 0, 7).contiguous()), kTol);
  EXPECT_LT(max_rel_err(b, parallel.slice(1, 7, 13).contiguous()), kTol);
  for (int64_t t = 13; t < kLen; ++t)
    EXPECT_LT(max_rel_err(m.decode(blocks, ids.slice(1, t, t + 1).contiguous()), row_slice(parallel, t)), kTol);
  if (GetParam() != "softmax") EXPECT_EQ(blocks.layers[0]->bytes(), m.new_decode_state(2, kLen).layers[0]->bytes());
}

// A branching tree: roots 0 and 1; max depth `depth` along the first chain, side branches at each level.
std::vector<int32_t> branching_tree(int depth) {
  std::vector<int32_t> parent = {-1, -1};
  int32_t tip = 0;
  for (int level = 1; level < depth; ++level) {
    parent.push_back(tip);  // continues the main chain
    const int32_t next = static_cast<int32_t>(parent.size()) - 1;
    parent.push_back(tip);                                                          // a sibling
    if (level % 2 == 0) parent.push_back(static_cast<int32_t>(parent.size()) - 1);  // a short side chain
    tip = next;
  }
  return parent;
}

// Logits of node i decoded one token at a time along its path over a copy of `state`.
Tensor sequential_node_logits(const LlamaModel& m, const DecodeState& state, const std::vector<int32_t>& tokens,
                              const std::vector<int32_t>& parent, int32_t node) {
  std::vector<int32_t> path;
  for (int32_t j = node; j >= 0; j = parent[j]) path.push_back(j);
  std::reverse(path.begin(), path.end());
  DecodeState s = state.clone();
  Tensor logits;
  for (int32_t j : path) logits = m.decode(s, Tensor::from_vector(std::vector<int32_t>{tokens[j]}, {1, 1}));
  return logits.view({1, m.config().vocab_size});
}

TEST_P(Mixers, TreeEqualsSequential) {
  const LlamaModel m = model_with(GetParam());
  const int64_t V = m.config().vocab_size;
  const Tensor prefix = random_ids(1, 3 * kG, V, 9);
  // P < C − 1, and P mod G ∈ {0, G−3, G−2, G−1} over the first groups.
  for (int64_t P : {int64_t{0}, int64_t{1}, kG, 2 * kG - 3, 2 * kG - 2, 2 * kG - 1, 2 * kG, 3 * kG - 1}) {
    DecodeState state = m.new_decode_state(1, P + 8);
    if (P > 0) m.decode(state, prefix.slice(1, 0, P).contiguous());
    for (int depth = 1; depth <= 5; ++depth) {
      const std::vector<int32_t> parent = branching_tree(depth);
      const std::vector<int32_t> tokens =
          random_ids(1, static_cast<int64_t>(parent.size()), V, 100 + P * 7 + depth).to_vector<int32_t>();
      const Tensor tree =
          m.verify_tree(state, Tensor::from_vector(tokens, {static_cast<int64_t>(tokens.size())}), parent);
      ASSERT_EQ(tree.shape(), (Shape{static_cast<int64_t>(parent.size()), V}));
      for (int32_t i = 0; i < static_cast<int32_t>(parent.size()); ++i)
        EXPECT_LT(
            max_rel_err(tree.slice(0, i, i + 1).contiguous(), sequential_node_logits(m, state, tokens, parent, i)),
            kTol)
            << "P " << P << ", depth " << depth << ", node " << i;
      EXPECT_EQ(state.position(), P) << "the tree must not advance the state";
    }
  }
}

TEST_P(Mixers, AdvanceThenContinueEqualsSequential) {
  const LlamaModel m = model_with(GetParam());
  const int64_t V = m.config().vocab_size;
  for (int64_t P : {int64_t{1}, kG - 2, 2 * kG - 1}) {
    const Tensor prefix = random_ids(1, P, V, 21 + P);
    const std::vector<int32_t> parent = branching_tree(5);
    const std::vector<int32_t> tokens =
        random_ids(1, static_cast<int64_t>(parent.size()), V, 31 + P).to_vector<int32_t>();
    const Tensor tree_ids = Tensor::from_vector(tokens, {static_cast<int64_t>(tokens.size())});
    std::vector<int32_t> accepted;  // the deepest root-to-leaf chain, and a shorter branch path
    for (int32_t j = static_cast<int32_t>(parent.size()) - 1; j >= 0; j = parent[j]) accepted.push_back(j);
    std::reverse(accepted.begin(), accepted.end());
    const std::vector<int32_t> cont = random_ids(1, 4, V, 41 + P).to_vector<int32_t>();

    // Reference: the committed prefix, the accepted tokens and the continuation as one parallel sequence.
    std::vector<int32_t> seq = prefix.to_vector<int32_t>();
    for (int32_t j : accepted) seq.push_back(tokens[j]);
    seq.insert(seq.end(), cont.begin(), cont.end());
    NoGradGuard no_grad;
    const Tensor ref = m.forward(Tensor::from_vector(seq, {1, static_cast<int64_t>(seq.size())}));
    const int64_t base = P + static_cast<int64_t>(accepted.size());

    for (bool verified_first : {true, false}) {
      DecodeState state = m.new_decode_state(1, 64);
      m.decode(state, prefix);
      if (verified_first) m.verify_tree(state, tree_ids, parent);
      m.advance(state, tree_ids, parent, accepted);
      ASSERT_EQ(state.position(), base);
      const Tensor out = m.decode(state, Tensor::from_vector(cont, {1, 4}));
      EXPECT_LT(max_rel_err(out, ref.slice(1, base, base + 4).contiguous()), kTol)
          << "P " << P << (verified_first ? " (after verify_tree)" : " (advance alone)");
    }
    DecodeState state = m.new_decode_state(1, 64);
    m.decode(state, prefix);
    EXPECT_THROW(m.advance(state, tree_ids, parent, {1, 2}), InputError);  // node 2 is not a child of node 1
    EXPECT_EQ(state.position(), P);
  }
}

// Continuous batching: sequences at positions around group boundaries share a prefill (prefill_batched), steps
// (decode_batched: the mixers' step_many) and tree passes (verify_trees_hidden); every row equals the sequence's own
// decode / verify_tree exactly, and the states they leave decode alike.
TEST_P(Mixers, BatchedStepsAndTreesEqualSingleSequenceExactly) {
  const LlamaModel m = model_with(GetParam());
  const int64_t V = m.config().vocab_size, D = m.config().hidden_size;
  const std::vector<int64_t> prompt_lens = {1, kG - 1, kG, 2 * kG - 2};
  // The prompts go in by one batched prefill (and, for the reference states, one decode each).
  std::vector<DecodeState> batched, single;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<double>> prefill_refs;
  for (size_t b = 0; b < prompt_lens.size(); ++b) {
    prompts.push_back(random_ids(1, prompt_lens[b], V, 50 + b).to_vector<int32_t>());
    batched.push_back(m.new_decode_state(1, 64));
    single.push_back(m.new_decode_state(1, 64));
    prefill_refs.push_back(
        m.decode(single.back(), Tensor::from_vector(prompts.back(), {1, prompt_lens[b]}), true).to_vector<double>());
  }
  std::vector<DecodeState*> ptrs;
  for (auto& s : batched) ptrs.push_back(&s);
  const auto prefilled = prefill_batched(m, ptrs, prompts).to_vector<double>();
  for (size_t b = 0; b < prompts.size(); ++b)
    ASSERT_EQ(std::vector<double>(prefilled.begin() + b * V, prefilled.begin() + (b + 1) * V), prefill_refs[b])
        << "prefill, sequence " << b;
  for (int round = 0; round < kG + 1; ++round) {
    // A step of all sequences, then (every other round) a tree pass with one accepted node per sequence.
    std::vector<int32_t> ids;
    for (size_t b = 0; b < ptrs.size(); ++b) ids.push_back(static_cast<int32_t>((round * 7 + b * 3 + 1) % V));
    const auto rows = decode_batched(m, ptrs, ids).to_vector<double>();
    for (size_t b = 0; b < ptrs.size(); ++b) {
      const auto ref =
          m.decode(single[b], Tensor::from_vector(std::vector<int32_t>{ids[b]}, {1, 1}), true).to_vector<double>();
      ASSERT_EQ(std::vector<double>(rows.begin() + b * V, rows.begin() + (b + 1) * V), ref)
          << "step, sequence " << b << ", round " << round;
    }
    if (round % 2) continue;
    const std::vector<int32_t> parent = branching_tree(2);
    std::vector<std::vector<int32_t>> trees(ptrs.size()), parents(ptrs.size(), parent);
    for (size_t b = 0; b < ptrs.size(); ++b)
      trees[b] = random_ids(1, static_cast<int64_t>(parent.size()), V, 200 + 10 * round + b).to_vector<int32_t>();
    const auto hidden = verify_trees_hidden(m, ptrs, trees, parents).to_vector<double>();
    const int64_t n = static_cast<int64_t>(parent.size());
    for (size_t b = 0; b < ptrs.size(); ++b) {
      const Tensor t = Tensor::from_vector(trees[b], {n});
      const auto ref = m.verify_tree_hidden(single[b], t, parent).to_vector<double>();
      ASSERT_EQ(std::vector<double>(hidden.begin() + b * n * D, hidden.begin() + (b + 1) * n * D), ref)
          << "tree, sequence " << b << ", round " << round;
      m.advance(batched[b], t, parent, {0, 2});  // root 0 and its child 2
      m.advance(single[b], t, parent, {0, 2});
    }
  }
}

// Test names may not contain '+'.
inline std::string preset_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (ch == '+') ch = '_';
  return n;
}

}  // namespace linspec::mixer_forms
