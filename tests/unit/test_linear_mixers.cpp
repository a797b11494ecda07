// Every attention preset through the whole model (tiny random LLaMA, GQA 3:1): parallel == recurrent at every
// position through three groups and a partial one; tree == sequential at committed lengths P with P mod G in
// {0, G−3, G−2, G−1} and P < C−1, trees of depth 1–5; advance then continue == sequential; a fresh `aug` model ==
// its `local` preset; checkpoint round trip; bad presets / options refused. The math runs in f64 so a wrong
// index shows up far above rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/attention_linear.h"
#include "model/checkpoint.h"
#include "tests/unit/format_test_util.h"
#include "tests/unit/llama_test_util.h"

namespace linspec {
namespace {

using testing::max_rel_err;
using testing::random_ids;
using testing::tiny_llama_config;

constexpr int64_t kG = 5, kC = 3;      // group size and conv taps: C − 1 = 2 tokens of conv history
constexpr int64_t kLen = 3 * kG + 2;   // three complete groups and a partial one
constexpr double kTol = 1e-9;          // f64

const std::vector<std::string> kPresets = {
    "softmax",   "aug",         "local",       "global",      "local+global",   "local+conv",     "elu",
    "relu",      "performer",   "cosformer",   "transnormer", "yoso",           "hedgehog",       "window",
    "elu+conv",  "relu+conv",   "performer+conv", "cosformer+conv", "transnormer+conv", "yoso+conv", "hedgehog+conv",
    "window+conv"};

bool has_prefix(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Small sizes so the tiny model crosses groups, chunks, windows and conv taps within a few tokens.
AttentionSpec spec_for(const std::string& preset) {
  AttentionSpec s;
  s.preset = preset;
  if (preset == "softmax") return s;
  const bool aug_family = preset == "aug" || preset == "local" || preset == "global" || preset == "local+global" ||
                          preset == "local+conv";
  if (aug_family) {
    s.options["group_size"] = std::to_string(kG);
    if (preset == "aug" || preset == "local+conv") s.options["conv_taps"] = std::to_string(kC);
    return s;
  }
  s.options["chunk_size"] = "4";
  if (has_prefix(preset, "yoso")) s.options["group_size"] = std::to_string(kG);
  if (has_prefix(preset, "performer")) s.options["features"] = "8", s.options["seed"] = "11";
  if (has_prefix(preset, "cosformer")) s.options["max_len"] = "64";
  if (has_prefix(preset, "transnormer")) s.options["norm_weight"] = "true";
  if (has_prefix(preset, "window")) s.options["window"] = "3";
  if (preset.find("+conv") != std::string::npos) s.options["conv_taps"] = std::to_string(kC);
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
    parent.push_back(tip);                                        // continues the main chain
    const int32_t next = static_cast<int32_t>(parent.size()) - 1;
    parent.push_back(tip);                                        // a sibling
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
      const Tensor tree = m.verify_tree(state, Tensor::from_vector(tokens, {static_cast<int64_t>(tokens.size())}), parent);
      ASSERT_EQ(tree.shape(), (Shape{static_cast<int64_t>(parent.size()), V}));
      for (int32_t i = 0; i < static_cast<int32_t>(parent.size()); ++i)
        EXPECT_LT(max_rel_err(tree.slice(0, i, i + 1).contiguous(), sequential_node_logits(m, state, tokens, parent, i)),
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
    const std::vector<int32_t> tokens = random_ids(1, static_cast<int64_t>(parent.size()), V, 31 + P).to_vector<int32_t>();
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

INSTANTIATE_TEST_SUITE_P(AllPresets, Mixers, ::testing::ValuesIn(kPresets), [](const auto& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (ch == '+') ch = '_';
  return n;
});

// C > G: the conv reaches back over more than one group boundary, in every form.
TEST(LinearMixers, ConvLongerThanGroupIsExact) {
  AttentionSpec s;
  s.preset = "aug";
  s.options = {{"group_size", "3"}, {"conv_taps", "7"}};
  const LlamaModel m = model_with_spec(s);
  const int64_t V = m.config().vocab_size;
  const Tensor ids = random_ids(1, 14, V, 61);
  NoGradGuard no_grad;
  const Tensor parallel = m.forward(ids);
  DecodeState state = m.new_decode_state(1, 32);
  for (int64_t t = 0; t < 14; ++t)
    EXPECT_LT(max_rel_err(m.decode(state, ids.slice(1, t, t + 1).contiguous()), row_slice(parallel, t)), kTol) << t;
  const std::vector<int32_t> parent = branching_tree(5);
  const std::vector<int32_t> tokens = random_ids(1, static_cast<int64_t>(parent.size()), V, 62).to_vector<int32_t>();
  for (int64_t P : {0, 1, 2, 3, 5, 6, 8}) {
    DecodeState st = m.new_decode_state(1, 32);
    if (P > 0) m.decode(st, ids.slice(1, 0, P).contiguous());
    const Tensor tree = m.verify_tree(st, Tensor::from_vector(tokens, {static_cast<int64_t>(tokens.size())}), parent);
    for (int32_t i = 0; i < static_cast<int32_t>(parent.size()); ++i)
      EXPECT_LT(max_rel_err(tree.slice(0, i, i + 1).contiguous(), sequential_node_logits(m, st, tokens, parent, i)), kTol)
          << "P " << P << ", node " << i;
  }
}

TEST(LinearMixers, FreshAugModelEqualsLocal) {
  NoGradGuard no_grad;
  const Tensor ids = random_ids(1, 2 * kG + 3, 53, 7);
  auto fresh = [&](const std::string& preset) {
    LlamaOptions o;
    o.dtype = DType::F64;
    LlamaModel m = LlamaModel::random(tiny_llama_config(), 13, o);
    AttentionSpec s = spec_for(preset);
    m.set_attention_spec(s);
    return m.forward(ids);
  };
  const Tensor local = fresh("local");
  EXPECT_LT(max_rel_err(fresh("aug"), local), 1e-14);
  EXPECT_LT(max_rel_err(fresh("local+conv"), local), 1e-14);
  EXPECT_LT(max_rel_err(fresh("local+global"), local), 1e-14);
  EXPECT_LT(max_rel_err(fresh("elu+conv"), fresh("elu")), 1e-14);
  EXPECT_GT(max_rel_err(fresh("global"), local), 1e-3);  // the check can fail
}

TEST(LinearMixers, ParameterNamesInitsAndGradients) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 17);
  AttentionSpec s = spec_for("aug");
  m.set_attention_spec(s);
  std::map<std::string, Tensor> named;
  for (const auto& [n, t] : m.named_parameters()) named[n] = t;
  ASSERT_TRUE(named.count("model.layers.1.self_attn.la.conv_w"));
  ASSERT_TRUE(named.count("model.layers.1.self_attn.la.lambda_global"));
  EXPECT_FALSE(named.count("model.layers.1.self_attn.la.lambda_local"));  // frozen by default
  EXPECT_EQ(named["model.layers.1.self_attn.la.conv_w"].shape(), (Shape{6, kC}));
  EXPECT_EQ(named["model.layers.1.self_attn.la.lambda_global"].item(), 0.0);
  const auto tensors = m.checkpoint_tensors();
  EXPECT_EQ(tensors.at("layers.0.self_attn.la.lambda_local").item(), 1.0);
  EXPECT_TRUE(tensors.count("layers.0.self_attn.q_proj.weight"));

  s.options["lambda_local_learnable"] = "true";
  m.set_attention_spec(s);
  named.clear();
  for (const auto& [n, t] : m.named_parameters()) named[n] = t;
  ASSERT_TRUE(named.count("model.layers.0.self_attn.la.lambda_local"));
  backward(ops::sum(m.forward(random_ids(1, 2 * kG + 1, 53, 3))));
  for (const char* n : {"la.conv_w", "la.lambda_local", "la.lambda_global"}) {
    const Tensor g = named["model.layers.0.self_attn." + std::string(n)].grad();
    ASSERT_TRUE(g.defined()) << n;
    double mx = 0;
    for (double x : g.to_vector<double>()) mx = std::max(mx, std::abs(x));
    EXPECT_GT(mx, 0.0) << n;
  }
}

TEST(LinearMixers, CheckpointRoundTripGivesIdenticalLogits) {
  const LlamaModel m = model_with("aug", DType::F32);
  Checkpoint ck;
  ck.config = m.config();
  ck.tensors = m.checkpoint_tensors();
  ck.tokenizer.type = "spm";
  ck.tokenizer.vocab = {"<unk>", "<s>", "</s>"};
  ck.tokenizer.scores = {0, 0, 0};
  ck.tokenizer.token_types = {kTokenUnknown, kTokenControl, kTokenControl};
  ck.tokenizer.unk_id = 0;
  const std::string path = testing::temp_path("linear_roundtrip.h5");
  save_checkpoint(path, ck);
  Checkpoint back = load_checkpoint(path);
  ASSERT_FALSE(back.config.attention.is_null());
  EXPECT_EQ(back.config.attention.at("preset"), "aug");
  EXPECT_EQ(back.config.attention.at("keep_softmax_layers"), nlohmann::json::array({1}));
  EXPECT_TRUE(back.tensors.count("layers.2.self_attn.la.conv_w"));
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel loaded = LlamaModel::from_tensors(back.config, back.tensors, o, path);
  EXPECT_EQ(loaded.layer(0).mixer->kind(), "aug");
  EXPECT_EQ(loaded.layer(1).mixer->kind(), "softmax");
  NoGradGuard no_grad;
  const Tensor ids = random_ids(1, kLen, 53, 77);
  EXPECT_EQ(max_rel_err(loaded.forward(ids), m.forward(ids)), 0.0);

  back.tensors.erase("layers.0.self_attn.la.lambda_global");
  EXPECT_THROW(LlamaModel::from_tensors(back.config, back.tensors, o, path), InputError);
}

TEST(LinearMixers, BadPresetsAndOptionsAreInputErrors) {
  const AttentionShape shape{6, 2, 6};
  auto make = [&](const std::string& preset, std::map<std::string, std::string> opts) {
    return make_mixer(preset, opts, shape, 0);
  };
  EXPECT_THROW(make("nope", {}), InputError);
  EXPECT_THROW(make("aug+conv", {}), InputError);
  EXPECT_THROW(make("aug", {{"bogus", "1"}}), InputError);
  EXPECT_THROW(make("aug", {{"group_size", "0"}}), InputError);
  EXPECT_THROW(make("aug", {{"conv_taps", "0"}}), InputError);
  EXPECT_THROW(make("aug", {{"group_size", "x"}}), InputError);
  EXPECT_THROW(make("local", {{"conv_taps", "4"}}), InputError);  // no conv branch to size
  EXPECT_THROW(make("global", {{"lambda_local_learnable", "true"}}), InputError);
  EXPECT_THROW(make("elu", {{"conv_taps", "4"}}), InputError);     // needs elu+conv
  EXPECT_THROW(make("elu+conv", {{"conv_taps", "-1"}}), InputError);
  EXPECT_THROW(make("yoso", {{"group_size", "0"}}), InputError);
  EXPECT_THROW(make("performer", {{"features", "abc"}}), InputError);
  EXPECT_THROW(make("softmax", {{"group_size", "4"}}), InputError);
  EXPECT_NO_THROW(make("aug", {{"group_size", "4"}, {"conv_taps", "9"}}));  // C > G is supported
  AttentionSpec s;
  s.preset = "aug";
  s.keep_softmax_layers = {7};
  EXPECT_THROW(resolve_attention_spec(s, 2, "test"), InputError);
  EXPECT_THROW(attention_spec_from_json(nlohmann::json{{"preset", 3}}, 2, "test"), InputError);
  EXPECT_THROW(parse_layer_list("1,,2", "test"), InputError);
  EXPECT_THROW(parse_option_assignment("novalue", "test"), InputError);
  EXPECT_EQ(parse_layer_list("0,5", "test"), (std::vector<int64_t>{0, 5}));
  for (const auto& name : attention_preset_names()) EXPECT_NO_THROW(make(name, {})) << name;
}

TEST(LinearMixers, SpecJsonRoundTripResolvesOptions) {
  AttentionSpec s;
  s.preset = "window+conv";
  s.options = {{"window", "16"}, {"conv_taps", "8"}};
  s.keep_softmax_layers = {1, 0, 1};
  const AttentionSpec r = resolve_attention_spec(s, 2, "test");
  EXPECT_EQ(r.options.at("window"), "16");
  EXPECT_EQ(r.options.at("conv_taps"), "8");
  EXPECT_TRUE(r.options.count("mix_init"));
  EXPECT_EQ(r.keep_softmax_layers, (std::vector<int64_t>{0, 1}));
  const AttentionSpec back = attention_spec_from_json(attention_spec_to_json(r), 2, "test");
  EXPECT_EQ(back.preset, r.preset);
  EXPECT_EQ(back.keep_softmax_layers, r.keep_softmax_layers);
  for (const auto& [k, v] : r.options) {
    ASSERT_TRUE(back.options.count(k)) << k;
    EXPECT_EQ(std::stod(back.options.at(k)), std::stod(v)) << k;
  }
}

}  // namespace
}  // namespace linspec
