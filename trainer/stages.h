// Staged training: one experiment file that chains several training runs, e.g. attention transfer → LoRA + KD →
// draft heads (configs/quickstart.yaml). The top-level keys are shared by every stage; `stages:` lists the stages in
// order, each a mapping with a `name` and the keys it changes:
//
//   model: {init: smollm2.h5, attention: {preset: aug}}
//   data: {path: corpus.h5, seq_len: 256}
//   checkpoint: {dir: out/run}
//   stages:
//     - name: transfer
//       objectives: {ce: 0, attention_transfer: 1}
//       trainable: [attention_new]
//     - name: finetune
//       objectives: {ce: 1, kd: {weight: 1}}
//       trainable: [lora, norms, attention_new]
//
// Each stage is the top level with its own keys merged in (mappings merge key by key; lists and scalars replace), then
// validated like any experiment (trainer/config.h), all of them before the first step. The chain sets two keys itself,
// which a stage may not set: stage k writes its snapshots to <checkpoint.dir>/<name>, and stage k > 0 starts from
// stage k−1's final snapshot (its LoRA adapters merged). model.teacher (kd's softmax teacher) defaults to the
// top-level model.init, so a later stage still distils from the original model. `skip: true` beside a stage's name
// (or --set stages.<name>.skip=true) leaves it out: the next stage starts where the one before it ended. A file without
// `stages:` is one stage with an empty name, trained in checkpoint.dir itself.
//
// --set key=value applies to every stage (after the stage's own keys); --set stages.<name>.key=value to one stage.
#pragma once
#include <string>
#include <vector>

#include "trainer/config.h"

namespace linspec::trainer {

struct TrainingStage {
  std::string name;  // "" for a file without stages:
  ExperimentConfig config;
};

// The stages of an experiment file (InputError naming the file, line, stage and key for a bad entry).
std::vector<TrainingStage> load_training_stages(const std::string& path,
                                                const std::vector<std::string>& overrides = {});
std::vector<TrainingStage> parse_training_stages(const std::string& yaml_text, const std::string& source,
                                                 const std::vector<std::string>& overrides = {});

// The snapshot a stage leaves for the next one: <dir>/snapshot-<train.steps>.h5.
std::string final_snapshot_path(const ExperimentConfig& stage);

}  // namespace linspec::trainer
