// Staged experiment files (trainer/stages.h): each stage is the top level with its own keys merged in, the chain
// sets checkpoint.dir and model.init, kd's teacher stays the original model, --set reaches every stage or one; a bad
// entry is refused naming the stage, the key and the line.
#include <gtest/gtest.h>

#include "core/error.h"
#include "trainer/stages.h"

using namespace linspec;
using namespace linspec::trainer;

namespace {
const char* kStaged = R"(model:
  init: teacher.h5
  attention: {preset: aug, group_size: 64}
data: {path: data.h5, seq_len: 256}
train: {steps: 10, lr: 1.0e-3, warmup_steps: 2, precision: bf16}
objectives: {ce: 1.0}
checkpoint: {dir: out/run, every: 5}
stages:
  - name: transfer
    train: {steps: 4, lr: 1.0e-2}
    objectives: {ce: 0.0, attention_transfer: 1.0}
    trainable: [attention_new]
  - name: finetune
    objectives: {kd: {weight: 0.5}}
    trainable: [lora, norms]
  - name: heads
    train: {steps: 6, warmup_steps: 0}
    objectives: {ce: 0.0, draft_heads: {count: 2, weight: 1.0}}
    trainable: [heads]
)";

std::string message_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_training_stages(yaml, "cfg.yaml", overrides);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}
}  // namespace

TEST(Stages, EachStageIsTheTopLevelWithItsKeysMergedIn) {
  const auto stages = parse_training_stages(kStaged, "cfg.yaml");
  ASSERT_EQ(stages.size(), 3u);
  const ExperimentConfig &t = stages[0].config, &f = stages[1].config, &h = stages[2].config;
  EXPECT_EQ(stages[0].name, "transfer");
  EXPECT_EQ(t.train.steps, 4);
  EXPECT_DOUBLE_EQ(t.train.lr, 1e-2);
  EXPECT_EQ(t.train.warmup_steps, 2);        // not in the stage: the top level's
  EXPECT_EQ(t.train.precision, "bf16");      // a sibling of a changed key survives the merge
  EXPECT_DOUBLE_EQ(t.objectives.ce, 0.0);
  EXPECT_EQ(t.trainable, (std::vector<std::string>{"attention_new"}));
  EXPECT_EQ(f.train.steps, 10);
  EXPECT_DOUBLE_EQ(f.objectives.ce, 1.0);
  EXPECT_DOUBLE_EQ(f.objectives.kd_weight, 0.5);
  EXPECT_EQ(f.trainable, (std::vector<std::string>{"lora", "norms"}));  // lists replace
  EXPECT_EQ(h.objectives.draft_heads_count, 2);
  EXPECT_EQ(h.train.warmup_steps, 0);
}

TEST(Stages, TheChainSetsDirectoriesInitsAndTheTeacher) {
  const auto stages = parse_training_stages(kStaged, "cfg.yaml");
  EXPECT_EQ(stages[0].config.checkpoint.dir, "out/run/transfer");
  EXPECT_EQ(stages[1].config.checkpoint.dir, "out/run/finetune");
  EXPECT_EQ(stages[0].config.model.init, "teacher.h5");
  EXPECT_EQ(stages[1].config.model.init, "out/run/transfer/snapshot-4.h5");
  EXPECT_EQ(stages[2].config.model.init, "out/run/finetune/snapshot-10.h5");
  EXPECT_EQ(final_snapshot_path(stages[2].config), "out/run/heads/snapshot-6.h5");
  for (const auto& s : stages) EXPECT_EQ(kd_teacher_path(s.config), "teacher.h5") << s.name;
  // Each stage's resolved YAML (stored in its snapshots) names its own init and directory.
  EXPECT_EQ(stages[1].config.resolved["model"]["init"].as<std::string>(), "out/run/transfer/snapshot-4.h5");
  EXPECT_NE(stages[1].config.source.find("stage 'finetune'"), std::string::npos);
}

TEST(Stages, SetReachesEveryStageOrOne) {
  const auto stages = parse_training_stages(
      kStaged, "cfg.yaml", {"train.threads=1", "stages.heads.train.steps=3", "checkpoint.dir=elsewhere"});
  for (const auto& s : stages) EXPECT_EQ(s.config.train.threads, 1) << s.name;
  EXPECT_EQ(stages[0].config.train.steps, 4);
  EXPECT_EQ(stages[2].config.train.steps, 3);
  EXPECT_EQ(stages[2].config.checkpoint.dir, "elsewhere/heads");
  EXPECT_EQ(stages[1].config.model.init, "elsewhere/transfer/snapshot-4.h5");
  // A plain --set wins over a stage's own value.
  EXPECT_EQ(parse_training_stages(kStaged, "cfg.yaml", {"train.steps=7"})[0].config.train.steps, 7);
}

TEST(Stages, ASkippedStageLeavesTheChain) {
  const auto stages = parse_training_stages(kStaged, "cfg.yaml", {"stages.transfer.skip=true"});
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].name, "finetune");
  EXPECT_EQ(stages[0].config.model.init, "teacher.h5");  // the first stage left starts from the top level's init
  EXPECT_EQ(stages[1].config.model.init, "out/run/finetune/snapshot-10.h5");
  const auto in_file = parse_training_stages(replaced(kStaged, "  - name: finetune\n", "  - name: finetune\n    skip: true\n"), "cfg.yaml");
  ASSERT_EQ(in_file.size(), 2u);
  EXPECT_EQ(in_file[1].config.model.init, "out/run/transfer/snapshot-4.h5");  // heads follows transfer
  // --set wins over the file.
  EXPECT_EQ(parse_training_stages(replaced(kStaged, "  - name: heads\n", "  - name: heads\n    skip: true\n"), "cfg.yaml",
                                  {"stages.heads.skip=false"}).size(), 3u);
}

TEST(Stages, AFileWithoutStagesIsOneUnnamedStage) {
  const auto stages = parse_training_stages(
      "model: {init: m.h5}\ndata: {path: d.h5}\ntrain: {steps: 3, warmup_steps: 0}\ncheckpoint: {dir: run}\n", "cfg.yaml");
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].name, "");
  EXPECT_EQ(stages[0].config.checkpoint.dir, "run");
  EXPECT_EQ(stages[0].config.model.init, "m.h5");
  EXPECT_EQ(kd_teacher_path(stages[0].config), "m.h5");
}

TEST(Stages, BadEntriesAreRefusedNamingStageKeyAndLine) {
  struct Bad {
    std::string name, yaml;
    std::vector<std::string> overrides;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::string s = kStaged;
  const std::vector<Bad> table = {
      {"unknown key in a stage", replaced(s, "train: {steps: 6,", "train: {stpes: 6,"), {},
       {"stage 'heads'", "unknown key 'train.stpes'", "cfg.yaml:17"}},
      {"bad value in a stage", replaced(s, "lr: 1.0e-2", "lr: fast"), {},
       {"stage 'transfer'", "'train.lr' must be a number", "cfg.yaml:10"}},
      {"warmup beyond the stage's steps", replaced(s, "train: {steps: 6, warmup_steps: 0}", "train: {steps: 1}"), {},
       {"stage 'heads'", "'train.warmup_steps'"}},
      {"missing name", replaced(s, "  - name: finetune\n", "  - nmae: finetune\n"), {}, {"stage 2", "'name'", "cfg.yaml:13"}},
      {"bad name", replaced(s, "name: heads", "name: 'a b'"), {}, {"stage 3", "'name'"}},
      {"duplicate name", replaced(s, "name: heads", "name: transfer"), {}, {"stage 'transfer'", "earlier stage"}},
      {"stage sets model.init", replaced(s, "    trainable: [heads]\n", "    trainable: [heads]\n    model: {init: x.h5}\n"),
       {}, {"stage 'heads'", "'model.init'", "set by the chain", "cfg.yaml:20"}},
      {"stage sets checkpoint.dir", replaced(s, "  - name: finetune\n", "  - name: finetune\n    checkpoint: {dir: d}\n"),
       {}, {"stage 'finetune'", "'checkpoint.dir'"}},
      {"stage not a mapping", replaced(s, "  - name: finetune\n", "  - finetune\n  - name: finetune\n"), {}, {"stage 2", "mapping"}},
      {"stages not a list", "model: {init: m.h5}\ndata: {path: d.h5}\nstages: {a: 1}\n", {}, {"'stages'", "list", "cfg.yaml:3"}},
      {"empty stages", "model: {init: m.h5}\ndata: {path: d.h5}\nstages: []\n", {}, {"'stages'", "non-empty"}},
      {"nested stages", replaced(s, "  - name: heads\n", "  - name: heads\n    stages: []\n"), {}, {"stage 'heads'", "nest"}},
      {"--set to an unknown stage", s, {"stages.nope.train.steps=3"}, {"no stage named 'nope'"}},
      {"--set a chain key of one stage", s, {"stages.heads.model.init=x.h5"}, {"'model.init'", "set by the chain"}},
      {"--set malformed stage key", s, {"stages.heads=3"}, {"stages.<name>.<key>=value"}},
      {"--set a stage in a file without stages", "model: {init: m.h5}\ndata: {path: d.h5}\n", {"stages.a.train.steps=2"},
       {"has no stages"}},
      {"--set a bad value for every stage", s, {"train.steps=0"}, {"stage 'transfer'", "'train.steps'", "--set"}},
      {"skip not a bool", replaced(s, "  - name: heads\n", "  - name: heads\n    skip: maybe\n"), {},
       {"stage 'heads'", "'skip'", "cfg.yaml:17"}},
      {"duplicate key in a stage", replaced(s, "    trainable: [heads]\n", "    trainable: [heads]\n    trainable: [lora]\n"), {},
       {"'trainable' is given twice (lines 19 and 20)", "cfg.yaml:20"}},
      {"every stage skipped", s, {"stages.transfer.skip=true", "stages.finetune.skip=true", "stages.heads.skip=true"},
       {"every stage is skipped"}},
  };
  for (const Bad& b : table) {
    const std::string msg = message_of(b.yaml, b.overrides);
    ASSERT_FALSE(msg.empty()) << b.name << ": accepted";
    for (const auto& e : b.expect) EXPECT_NE(msg.find(e), std::string::npos) << b.name << ": '" << e << "' not in: " << msg;
  }
}
