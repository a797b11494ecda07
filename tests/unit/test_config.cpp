// The experiment schema: a valid config resolves with defaults; each malformed config is refused with a
// message naming the source, the line where there is one, and the key.
#include <gtest/gtest.h>

#include "core/error.h"
#include "trainer/config.h"

using namespace linspec;
using namespace linspec::trainer;

namespace {
const char* kBase = R"(model:
  init: model.h5
  attention: {preset: aug, group_size: 64}
data: {path: data.h5, seq_len: 256}
train: {steps: 10, lr: 1.0e-4, warmup_steps: 2}
)";

struct Bad {
  std::string name;
  std::string yaml;                    // full text, or empty to use kBase with `overrides`
  std::vector<std::string> overrides;
  std::string expect;                  // substring of the message (the key)
  std::string expect_line = "";        // e.g. "cfg.yaml:3"
};

std::string base_with(const std::string& extra) { return std::string(kBase) + extra; }
}  // namespace

TEST(Config, ValidConfigResolvesDefaults) {
  ExperimentConfig c = parse_experiment(kBase, "cfg.yaml");
  EXPECT_EQ(c.model.init, "model.h5");
  EXPECT_EQ(c.data.seq_len, 256);
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-4);
  EXPECT_EQ(c.train.schedule, "constant_with_warmup");  // default
  EXPECT_EQ(c.lora.rank, 8);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q", "k", "v", "o"}));
  EXPECT_EQ(c.checkpoint.keep_last, 3);
  // The resolved YAML holds every key and parses back to the same config.
  ExperimentConfig again = parse_experiment(c.resolved_yaml(), "resolved");
  EXPECT_EQ(again.resolved_yaml(), c.resolved_yaml());
  EXPECT_NE(c.resolved_yaml().find("clip_grad_norm"), std::string::npos);
  // Defaults in their shortest exact text (not yaml-cpp's 17 digits).
  EXPECT_EQ(c.resolved["objectives"]["draft_heads"]["decay"].as<std::string>(), "0.8");
  EXPECT_EQ(c.resolved["model"]["attention"]["conv_taps"].as<int>(), 32);  // the preset's default, filled in
}

TEST(Config, SetOverridesAnyKey) {
  ExperimentConfig c = parse_experiment(kBase, "cfg.yaml",
                                        {"train.lr=3e-4", "lora.targets=[q, v]", "model.attention.preset=yoso+conv",
                                         "model.attention.tau=4", "objectives.kd.weight=0.5", "train.recompute=true"});
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-4);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(c.model.attention.preset, "yoso+conv");
  // The file's group_size stays (yoso has one), --set adds tau; the resolved config holds every option of the preset.
  EXPECT_EQ(c.model.attention.options, (std::map<std::string, std::string>{{"group_size", "64"}, {"tau", "4"}}));
  EXPECT_EQ(c.resolved["model"]["attention"]["conv_taps"].as<int>(), 32);
  EXPECT_DOUBLE_EQ(c.objectives.kd_weight, 0.5);
  EXPECT_TRUE(c.train.recompute);
}

TEST(Config, MalformedConfigsAreRefusedNamingTheKey) {
  const std::vector<Bad> table = {
      {"unknown top key", base_with("bogus: 1\n"), {}, "unknown key 'bogus'", "cfg.yaml:6"},
      {"unknown nested key", base_with("lora: {rnak: 4}\n"), {}, "unknown key 'lora.rnak'", "cfg.yaml:6"},
      {"unknown deep key", base_with("objectives: {kd: {temp: 2}}\n"), {}, "'objectives.kd.temp'"},
      {"scalar where map", base_with("lora: 4\n"), {}, "'lora' must be a mapping"},
      {"missing init", "data: {path: d.h5}\n", {}, "'model.init' is missing"},
      {"missing data path", "model: {init: m.h5}\n", {}, "'data.path' is missing"},
      {"steps not int", "", {"train.steps=ten"}, "'train.steps' must be an integer"},
      {"steps float", "", {"train.steps=1.5"}, "'train.steps' must be an integer"},
      {"steps zero", "", {"train.steps=0"}, "'train.steps'"},
      {"negative lr", "", {"train.lr=-1"}, "'train.lr'"},
      {"lr string", "", {"train.lr=fast"}, "'train.lr' must be a number"},
      {"bad schedule", "", {"train.schedule=exponential"}, "'train.schedule'"},
      {"bad precision", "", {"train.precision=fp8"}, "'train.precision'"},
      {"recompute not bool", "", {"train.recompute=maybe"}, "'train.recompute'"},
      {"micro_batch zero", "", {"train.micro_batch=0"}, "'train.micro_batch'"},
      {"grad_accum negative", "", {"train.grad_accum=-2"}, "'train.grad_accum'"},
      {"warmup > steps", "", {"train.warmup_steps=50"}, "'train.warmup_steps'"},
      {"clip negative", "", {"train.clip_grad_norm=-1"}, "'train.clip_grad_norm'"},
      {"weight decay list", "", {"train.weight_decay=[1]"}, "'train.weight_decay'"},
      {"seq_len one", "", {"data.seq_len=1"}, "'data.seq_len'"},
      {"unknown preset", "", {"model.attention.preset=flash"}, "'model.attention.preset'"},
      {"group size zero", "", {"model.attention.group_size=0"}, "'model.attention.group_size'"},
      {"conv taps negative", "", {"model.attention.conv_taps=-3"}, "'model.attention.conv_taps'"},
      {"option of another preset", "", {"model.attention.features=8"}, "unknown option 'features'"},
      {"option in the file", "model: {init: m.h5, attention: {preset: elu, group_size: 64}}\ndata: {path: d.h5}\n", {},
       "'model.attention.group_size' (attention 'elu'): unknown option 'group_size'", "cfg.yaml:1"},
      {"option not a scalar", "model: {init: m.h5, attention: {preset: aug, group_size: [1]}}\ndata: {path: d.h5}\n", {},
       "'model.attention.group_size' (an attention option) must be a scalar"},
      {"keep_softmax not list", "", {"model.keep_softmax_layers=3"}, "'model.keep_softmax_layers'"},
      {"keep_softmax bad item", "", {"model.keep_softmax_layers=[1, x]"}, "'model.keep_softmax_layers'"},
      {"lora rank negative", "", {"lora.rank=-1"}, "'lora.rank'"},
      {"lora dropout one", "", {"lora.dropout=1.0"}, "'lora.dropout'"},
      {"lora target unknown", "", {"lora.targets=[q, z]"}, "'lora.targets'"},
      {"trainable unknown", "", {"trainable=[everything]"}, "'trainable'"},
      {"backend unknown", "", {"distributed.backend=gloo"}, "'distributed.backend'"},
      {"zero stage 2", "", {"distributed.zero=2"}, "'distributed.zero'"},
      {"checkpoint every zero", "", {"checkpoint.every=0"}, "'checkpoint.every'"},
      {"keep_last zero", "", {"checkpoint.keep_last=0"}, "'checkpoint.keep_last'"},
      {"kd temperature zero", "", {"objectives.kd.temperature=0"}, "'objectives.kd.temperature'"},
      {"divergence unknown", "", {"objectives.draft_model.divergence=l2"}, "'objectives.draft_model.divergence'"},
      {"heads target unknown", "", {"objectives.draft_heads.target=teacher"}, "'objectives.draft_heads.target'"},
      {"log every string", "", {"log.every=often"}, "'log.every'"},
      {"set unknown key", "", {"train.lrr=1"}, "unknown key 'train.lrr'"},
      {"set without value", "", {"train.lr"}, "expected key=value"},
      {"yaml syntax", "model: {init: m.h5\ndata: [\n", {}, "YAML syntax error"},
      {"top level list", "- a\n- b\n", {}, "top level must be a mapping"},
  };
  ASSERT_GE(table.size(), 30u);
  for (const Bad& b : table) {
    const std::string text = b.yaml.empty() ? kBase : b.yaml;
    try {
      parse_experiment(text, "cfg.yaml", b.overrides);
      ADD_FAILURE() << b.name << ": accepted";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(b.expect), std::string::npos) << b.name << ": message was: " << msg;
      if (!b.expect_line.empty()) EXPECT_NE(msg.find(b.expect_line), std::string::npos) << b.name << ": " << msg;
      if (!b.overrides.empty() && b.expect.find("unknown key") == std::string::npos &&
          b.expect.find("key=value") == std::string::npos)
        EXPECT_NE(msg.find("--set"), std::string::npos) << b.name << ": should name the --set source: " << msg;
      else if (b.overrides.empty())
        EXPECT_NE(msg.find("cfg.yaml"), std::string::npos) << b.name << ": should name the file: " << msg;
    }
  }
}

TEST(Config, MissingFileNamesIt) {
  try {
    load_experiment("/nonexistent/exp.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/exp.yaml"), std::string::npos);
  }
}

// One reading of every scalar, YAML 1.2 core schema (trainer/yaml_scalar.h): the value validated is the value used.
TEST(Config, ScalarsFollowTheYaml12CoreSchema) {
  auto steps = [](const std::string& text) {
    return parse_experiment("model: {init: m.h5}\ndata: {path: d.h5}\ntrain: {steps: " + text + ", warmup_steps: 0}\n",
                            "cfg.yaml")
        .train.steps;
  };
  EXPECT_EQ(steps("010"), 10);  // decimal, not yaml-cpp's octal 8
  EXPECT_EQ(steps("08"), 8);
  EXPECT_EQ(steps("0o10"), 8);
  EXPECT_EQ(steps("0x10"), 16);
  EXPECT_EQ(steps("+7"), 7);
  ExperimentConfig c =
      parse_experiment(kBase, "cfg.yaml", {"train.lr=1e-3", "train.recompute=True", "train.clip_grad_norm=2"});
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_TRUE(c.train.recompute);
  EXPECT_DOUBLE_EQ(c.train.clip_grad_norm, 2.0);
}

TEST(Config, ScalarsOutsideTheCoreSchemaDuplicateAndComplexKeysAreRefused) {
  const std::vector<Bad> table = {
      {"hex float", "", {"train.lr=0x1p-7"}, "'train.lr' must be a number"},
      {"infinite lr", "", {"train.lr=.inf"}, "'train.lr' must be a number"},
      {"quoted integer", base_with("eval: {every: \" 2\"}\n"), {}, "'eval.every' must be an integer", "cfg.yaml:6"},
      {"quoted integer no space", "", {"train.steps='10'"}, "'train.steps' must be an integer"},
      {"octal with a digit 8", "", {"train.steps=0o18"}, "'train.steps' must be an integer"},
      {"integer beyond 64 bits", "", {"train.steps=99999999999999999999"}, "'train.steps' must be an integer"},
      {"YAML 1.1 bool", "", {"train.recompute=yes"}, "'train.recompute' must be true or false"},
      {"non-integer list item", "", {"model.keep_softmax_layers=[1, 0x]"}, "'model.keep_softmax_layers'"},
      {"duplicate top key",
       base_with("train: {steps: 3}\n"),
       {},
       "key 'train' is given twice (lines 5 and 6)",
       "cfg.yaml:6"},
      {"duplicate nested key", base_with("lora: {rank: 4, rank: 8}\n"), {}, "key 'rank' is given twice", "cfg.yaml:6"},
      {"complex key", base_with("? [a, b]\n: 1\n"), {}, "a mapping key must be a plain name", "cfg.yaml:6"},
  };
  for (const Bad& b : table) {
    std::string msg;
    try {
      parse_experiment(b.yaml.empty() ? kBase : b.yaml, "cfg.yaml", b.overrides);
    } catch (const InputError& e) {
      msg = e.what();
    }
    ASSERT_FALSE(msg.empty()) << b.name << ": accepted";
    EXPECT_NE(msg.find(b.expect), std::string::npos) << b.name << ": " << msg;
    if (!b.expect_line.empty()) EXPECT_NE(msg.find(b.expect_line), std::string::npos) << b.name << ": " << msg;
  }
}
