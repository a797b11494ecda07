// Every built-in attention preset through the form-agreement suite of tests/unit/mixer_forms.h; then the
// preset-specific checks: conv longer than a group, a fresh `aug` model == its `local` preset, parameter names /
// inits / gradients, checkpoint round trip, bad presets / options refused, spec JSON round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attention/linear_mixers.h"
#include "model/checkpoint.h"
#include "tests/unit/mixer_forms.h"

namespace linspec {
namespace {

using namespace mixer_forms;

INSTANTIATE_TEST_SUITE_P(AllPresets, Mixers, ::testing::ValuesIn(attention_preset_names()), preset_test_name);

// Parallel == recurrent at every position and tree == sequential at several committed lengths, for one spec.
void expect_forms_exact(const AttentionSpec& s) {
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

// C > G: the conv reaches back over more than one group boundary, in every form.
TEST(LinearMixers, ConvLongerThanGroupIsExact) {
  AttentionSpec s;
  s.preset = "aug";
  s.options = {{"group_size", "3"}, {"conv_taps", "7"}};
  expect_forms_exact(s);
}

// global_mean: the global term's per-group factor is applied alike by the parallel, recurrent and tree forms.
TEST(LinearMixers, GlobalMeanIsExact) {
  AttentionSpec s;
  s.preset = "aug";
  s.options = {{"group_size", "3"}, {"conv_taps", "2"}, {"global_mean", "true"}};
  expect_forms_exact(s);
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
