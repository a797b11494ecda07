// The preset registry (attention/registry.h), shown by adding a preset the way a user would: this file is the
// whole change. It defines "toy_mean" (o_t = gain · the causal mean of v, a KV-free mixer with all three forms),
// registers it with one call, and then every part of linspec that lists or builds presets knows it: the
// form-agreement suite that every built-in preset runs (tests/unit/mixer_forms.h, on toy_mean and the derived
// toy_mean+conv), checkpoint specs and their JSON, the YAML keys model.attention.*, and the generated --help.
// docs/architecture.md §8 quotes this file as the diff of adding a preset.
#include <gtest/gtest.h>

#include "attention/registry.h"
#include "attention/spec.h"
#include "core/ops.h"
#include "tests/unit/mixer_forms.h"
#include "trainer/config.h"

namespace linspec {
namespace {

using namespace mixer_forms;

// ---------------------------------------------------------------- the toy preset (a user's new file)

class CausalMeanState : public AttentionState {
 public:
  explicit CausalMeanState(Tensor sum) : sum(std::move(sum)) {}
  int64_t position() const override { return pos; }
  int64_t bytes() const override { return static_cast<int64_t>(sum.nbytes()); }
  std::unique_ptr<AttentionState> clone() const override {
    auto s = std::make_unique<CausalMeanState>(sum.clone());
    s->pos = pos;
    return s;
  }
  Tensor sum;  // [B, Hkv, 1, d]: Σ v over the absorbed tokens
  int64_t pos = 0;
};

class CausalMeanMixer : public AttentionMixer {
 public:
  CausalMeanMixer(const AttentionShape& shape, double gain) : shape_(shape), gain_(gain) {}
  std::string kind() const override { return "toy_mean"; }
  const AttentionShape& shape() const override { return shape_; }

  // Softmax over all-zero scores is the uniform causal average.
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const override {
    return ops::scale(ops::causal_attention(ops::scale(q, 0.0), k, v), gain_);
  }
  std::unique_ptr<AttentionState> new_state(int64_t batch, int64_t, DType dtype, Device device) const override {
    return std::make_unique<CausalMeanState>(
        Tensor::zeros({batch, shape_.kv_heads, 1, shape_.head_dim}, dtype, device));
  }
  Tensor step(AttentionState& state, const Tensor&, const Tensor&, const Tensor& v) const override {
    auto& s = dynamic_cast<CausalMeanState&>(state);
    std::vector<Tensor> out;
    for (int64_t t = 0; t < v.size(2); ++t) {
      s.sum = ops::add(s.sum, v.slice(2, t, t + 1).contiguous());
      out.push_back(ops::scale(per_query_head(s.sum), gain_ / static_cast<double>(++s.pos)));
    }
    return ops::concat(out, 2);
  }
  Tensor tree(const AttentionState& state, const Tensor&, const Tensor&, const Tensor& v,
              const std::vector<int32_t>& parent) const override {
    const auto& s = dynamic_cast<const CausalMeanState&>(state);
    const std::vector<int32_t> depth = tree_node_depths(parent, "toy_mean tree");
    std::vector<Tensor> out;
    for (int32_t i = 0; i < static_cast<int32_t>(parent.size()); ++i) {
      Tensor acc = s.sum;
      for (int32_t j = i; j >= 0; j = parent[j]) acc = ops::add(acc, v.slice(2, j, j + 1).contiguous());
      out.push_back(ops::scale(per_query_head(acc), gain_ / static_cast<double>(s.pos + depth[i] + 1)));
    }
    return ops::concat(out, 2);
  }
  void advance(AttentionState& state, const Tensor&, const Tensor& v, const std::vector<int32_t>& parent,
               const std::vector<int32_t>& accepted) const override {
    check_accepted_path(parent, accepted, "toy_mean accepted path");
    auto& s = dynamic_cast<CausalMeanState&>(state);
    for (int32_t j : accepted) s.sum = ops::add(s.sum, v.slice(2, j, j + 1).contiguous()), ++s.pos;
  }

 private:
  // [B, Hkv, n, d] -> [B, Hq, n, d]: query head h reads kv head h / (Hq / Hkv).
  Tensor per_query_head(const Tensor& x) const {
    std::vector<Tensor> heads;
    const int64_t rep = shape_.q_heads / shape_.kv_heads;
    for (int64_t h = 0; h < shape_.q_heads; ++h) heads.push_back(x.slice(1, h / rep, h / rep + 1).contiguous());
    return ops::concat(heads, 1);
  }
  AttentionShape shape_;
  double gain_;
};

AttentionPreset toy_mean_preset() {
  AttentionPreset p;
  p.name = "toy_mean";
  p.summary = "gain · causal mean of v (a test preset)";
  p.trains = "nothing (no parameters)";
  p.conv_variant = true;
  p.options = {{"gain", OptionType::Number, "1", 0, 8, true, "output scale"}};
  p.make = [](const PresetOptions& o, const AttentionShape& shape, int64_t, const MixerInit&) {
    return std::unique_ptr<AttentionMixer>(std::make_unique<CausalMeanMixer>(shape, o.number("gain")));
  };
  return p;
}

// The one registration line (a built-in preset puts it in attention/presets/builtin.cpp instead).
const bool kToyRegistered = (register_attention_preset(toy_mean_preset()), true);

// ---------------------------------------------------------------- what the registration gives

INSTANTIATE_TEST_SUITE_P(ToyPreset, Mixers, ::testing::Values("toy_mean", "toy_mean+conv"), preset_test_name);

TEST(AttentionRegistry, ToyPresetIsListedWithItsOptionsAndConvVariant) {
  ASSERT_TRUE(kToyRegistered);
  const std::vector<std::string> names = attention_preset_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "toy_mean"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "toy_mean+conv"), names.end());
  EXPECT_EQ(names.front(), "softmax");  // built-ins first, in their order
  const std::string help = attention_presets_help();
  EXPECT_NE(help.find("toy_mean: gain · causal mean of v"), std::string::npos) << help;
  EXPECT_NE(help.find("gain (number > 0, ≤ 8, default 1)"), std::string::npos) << help;
  EXPECT_NE(help.find("conv_taps (int ≥ 1, ≤ 4096, default 32)"), std::string::npos) << help;
  EXPECT_THROW(register_attention_preset(toy_mean_preset()), std::logic_error);  // a name is registered once
}

TEST(AttentionRegistry, OptionsAreTypedRangedAndDefaulted) {
  const AttentionPreset& p = attention_preset("toy_mean+conv", "test");
  const PresetOptions d = parse_preset_options(p, {}, "test");
  EXPECT_EQ(d.values(), (std::map<std::string, std::string>{{"gain", "1"}, {"conv_taps", "32"}}));
  EXPECT_EQ(parse_preset_options(p, {{"gain", "0.50"}}, "test").values().at("gain"), "0.5");  // canonical text
  for (const auto& [key, value, expect] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"gain", "0", "gain (number > 0, ≤ 8, default 1) got 0"},
           {"gain", "9", "got 9"},
           {"gain", "x", "'x' is not a number"},
           {"gain", "inf", "must be finite"},
           {"conv_taps", "1.5", "is not an integer"},
           {"colour", "1", "unknown option 'colour' (its options: gain, conv_taps)"}}) {
    try {
      parse_preset_options(p, {{key, value}}, "cfg.yaml");
      ADD_FAILURE() << key << "=" << value << " accepted";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(expect), std::string::npos) << msg;
      EXPECT_NE(msg.find("cfg.yaml (attention 'toy_mean+conv')"), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(attention_preset("toy_max", "test"), InputError);
}

TEST(AttentionRegistry, ToySpecResolvesAndRoundTripsThroughJson) {
  AttentionSpec s;
  s.preset = "toy_mean";
  s.options = {{"gain", "2"}};
  const AttentionSpec r = resolve_attention_spec(s, 3, "test");
  const AttentionSpec back = attention_spec_from_json(attention_spec_to_json(r), 3, "test");
  EXPECT_EQ(back.preset, "toy_mean");
  EXPECT_EQ(back.options, r.options);
  // The gain really reaches the mixer: twice the unit-gain output.
  const AttentionShape shape{6, 2, 6};
  const auto m2 = make_mixer("toy_mean", r.options, shape, 0), m1 = make_mixer("toy_mean", {}, shape, 0);
  Philox rng(7);
  auto random = [&](const Shape& shape) {
    std::vector<double> x(static_cast<size_t>(shape_numel(shape)));
    for (double& e : x) e = rng.normal();
    return Tensor::from_vector(x, shape);
  };
  const Tensor q = random({2, 6, 5, 6}), kv = random({2, 2, 5, 6});
  NoGradGuard no_grad;
  EXPECT_LT(max_rel_err(m2->forward(q, kv, kv), ops::scale(m1->forward(q, kv, kv), 2.0)), 1e-6);
}

TEST(AttentionRegistry, YamlTakesTheToyPresetAndItsOptions) {
  const std::string base = "model: {init: m.h5, attention: {preset: toy_mean, gain: 0.25}}\ndata: {path: d.h5}\n";
  const trainer::ExperimentConfig c = trainer::parse_experiment(base, "cfg.yaml");
  EXPECT_EQ(c.model.attention.preset, "toy_mean");
  EXPECT_EQ(c.model.attention.options, (std::map<std::string, std::string>{{"gain", "0.25"}}));
  EXPECT_EQ(c.resolved["model"]["attention"]["gain"].as<std::string>(), "0.25");
  try {
    trainer::parse_experiment(base, "cfg.yaml", {"model.attention.group_size=4"});
    ADD_FAILURE() << "group_size accepted for toy_mean";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--set model.attention.group_size=4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unknown option 'group_size' (its options: gain)"), std::string::npos) << msg;
  }
  EXPECT_THROW(trainer::parse_experiment(base, "cfg.yaml", {"model.attention.gain=-1"}), InputError);
}

}  // namespace
}  // namespace linspec
