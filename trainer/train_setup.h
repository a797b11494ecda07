// Everything `linspec train` builds from the experiment config before the first step: the init checkpoint, the
// student (linearized per model.attention, LoRA per lora.*, trainable tensors per `trainable`), the kd teacher, the
// drafts (trainer/drafts.h) and the token shards. A resumed run takes the model tensors (mixer and LoRA tensors
// included) and the drafts from the snapshot.
#pragma once
#include <memory>
#include <ostream>

#include "data/token_shards.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/lora.h"
#include "trainer/comm.h"
#include "trainer/config.h"
#include "trainer/drafts.h"
#include "trainer/objectives.h"
#include "trainer/snapshot.h"
#include "trainer/student.h"

namespace linspec::trainer {

struct TrainSetup {
  Checkpoint init;                       // model.init (tokenizer and attributes; its tensors are moved out)
  std::unique_ptr<LlamaModel> model;     // the student's weights and mixers
  std::unique_ptr<LlamaModel> teacher;   // the original softmax model, for kd only
  std::unique_ptr<LoraSet> lora;         // when `trainable` lists lora
  std::unique_ptr<Student> student;
  Drafts drafts;                         // draft heads / draft model, when they train
  TokenShards data;
  ObjectiveWeights objectives;

  // Everything that trains: the student's tensors, then the drafts' (prefixed names, trainer/drafts.h).
  std::vector<std::pair<std::string, Tensor>> trainable_parameters() const;
  // Their parameter stages for GradSync: the student's (Student::parameter_stage); the drafts' gradients are final
  // before the student's last stage (their ops come after its forward), so they share that stage.
  std::vector<int64_t> trainable_stages() const;
};

// The attention spec model.attention.* and model.keep_softmax_layers ask for (options the preset takes only).
linspec::AttentionSpec attention_spec_from_experiment(const ExperimentConfig& cfg);

// The device train.device names (auto: CUDA when the binary has it and a GPU is visible); under mpirun each rank
// takes GPU local_rank mod visible GPUs. InputError naming the key for cuda without a CUDA build or a GPU.
Device training_device(const ExperimentConfig& cfg);

// The GEMM precision train.precision asks for on `device`. "auto" (when resolve_auto_precision has not settled it)
// is bf16 on CUDA and on CPUs with native bf16 dot products (core/cpu_features.h), fp32 elsewhere.
std::string training_precision(const ExperimentConfig& cfg, Device device);

// Whether bf16 training pays over fp32 at these measured GEMM rates: only clearly faster (+10%) counts, since bf16
// also rounds the operands. A CPU with native bf16 dot products may still multiply faster in fp32 (one such box:
// oneDNN bf16 170 GFLOP/s, fp32 313).
bool bf16_training_pays(double fp32_gflops, double bf16_gflops);

// Settles train.precision "auto" into fp32 or bf16 before the setup is built: bf16 on CUDA; on a CPU with native
// bf16, whichever GEMM measures faster here (bf16_training_pays); fp32 otherwise. Every rank measures and bf16 is
// chosen only when all of them find it pays (`world`: null for one process), so the ranks agree. Logs the choice.
void resolve_auto_precision(ExperimentConfig& cfg, Device device, Communicator* world, std::ostream& log);

// Checks files (model.init, data.path, tokenizer fingerprint) and builds the setup with every tensor (model, kd
// teacher, LoRA, drafts) on `device`; InputError naming the config key or file at fault. `resume`: the snapshot to
// continue from, or null.
TrainSetup build_training(const ExperimentConfig& cfg, const LoadedSnapshot* resume, std::ostream& log,
                          Device device = Device::CPU);

// The model part of a snapshot: the student's tensors (LoRA unmerged, mixers' tensors), the model config with its
// attention section, the tokenizer, the resolved YAML, and the "lora" attribute when adapters exist; plus the
// drafts' /draft/heads and /draft/model, so `eval` / `generate --speculative heads|draft` read a snapshot directly.
struct SnapshotModelPart {
  Checkpoint checkpoint;
  ExtraGroupsWriter drafts;  // empty when no draft trains
};
SnapshotModelPart snapshot_model_part(const TrainSetup& setup, const ExperimentConfig& cfg);

}  // namespace linspec::trainer
