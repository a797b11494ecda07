// The YAML experiment schema: every key with its type, default and allowed range, validated before any
// work starts. Errors name the file, line and key (InputError → exit 2). The resolved config (defaults
// filled in, --set overrides applied) is printed at start and stored in every snapshot.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace linspec::trainer {

// The model.attention.* keys as written in the YAML: `preset` plus any of that preset's options
// (`model.attention.group_size: 32`, ...), checked against the preset table (attention/registry.h) — the schema
// has no preset-specific keys of its own. trainer/train_setup.cpp turns them into the model's
// linspec::AttentionSpec (attention/spec.h).
struct AttentionKeys {
  std::string preset = "aug";
  std::map<std::string, std::string> options;  // option -> value text, only those the YAML or --set gives
};

struct ExperimentConfig {
  struct {
    std::string init;
    std::string teacher;  // the softmax model kd distils from; "" = model.init
    AttentionKeys attention;
    std::vector<int> keep_softmax_layers;
  } model;
  struct {
    std::string path;
    int seq_len = 1024;
  } data;
  struct {
    int steps = 100, micro_batch = 1, grad_accum = 1, warmup_steps = 20, seed = 0, threads = 0;
    double lr = 2e-5, weight_decay = 0.0, clip_grad_norm = 1.0, min_lr_ratio = 0.0;
    std::string schedule = "constant_with_warmup", precision = "fp32";
    std::string device = "auto";  // auto (CUDA when built and a GPU is visible) | cpu | cuda
    bool recompute = false;
  } train;
  struct {
    double ce = 1.0, attention_transfer = 0.0, kd_weight = 0.0, kd_temperature = 1.0;
    int draft_heads_count = 0;
    double draft_heads_weight = 0.0, draft_heads_decay = 0.8;
    std::string draft_heads_target = "self";
    bool draft_heads_shared_projection = true;  // heads project with the LM head (false: Medusa-1 copies)
    int draft_model_layers = 0;
    std::string draft_model_init = "first-layers", draft_model_divergence = "fkl";
    bool draft_model_on_policy = false;
    double draft_model_weight = 0.0;
    double eagle_weight = 0.0, eagle_regression = 1.0;  // feature draft: KD weight, feature-regression weight
    int eagle_vocab = 0;                                // its proposal vocabulary (0: the full one)
    int eagle_unroll = 1;                               // depths trained per position (feature_draft_loss)
    std::string eagle_init;                             // "": fresh from the target's last layer; PATH: its /draft/eagle
  } objectives;
  struct {
    int rank = 8;
    double alpha = 16, dropout = 0.0;
    std::vector<std::string> targets = {"q", "k", "v", "o"};
  } lora;
  std::vector<std::string> trainable = {"lora", "norms", "embeddings", "attention_new"};
  struct {
    std::string backend = "auto";
    int zero = 0;
  } distributed;
  struct {
    std::string dir = "out/run";
    int every = 100, keep_last = 3;
  } checkpoint;
  struct {
    int every = 100, batches = 8;
  } eval;
  struct {
    int every = 10;
    int profile_every = 0;  // > 0: profile every N-th step (time per op family, GFLOP/s vs the GEMM ceiling)
  } log;

  std::string source;    // the file it came from
  YAML::Node resolved;   // every key, defaults included
  std::string resolved_yaml() const;
};

// Loads `path`, applies `overrides` ("a.b=value", value parsed as YAML), validates every key.
ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
// Same, from YAML text (for tests and for configs stored in snapshots); `source` names it in errors.
ExperimentConfig parse_experiment(const std::string& yaml_text, const std::string& source,
                                  const std::vector<std::string>& overrides = {});
// Same, from a parsed top-level mapping (trainer/stages.cpp builds one per stage); `root` is not modified.
ExperimentConfig parse_experiment_root(const YAML::Node& root, const std::string& source,
                                       const std::vector<std::string>& overrides = {});

// The text of an experiment file (InputError naming it when it is missing or a directory) and its parse as a
// top-level mapping (InputError with file:line for a syntax error).
std::string read_config_file(const std::string& path);
YAML::Node load_yaml_text(const std::string& text, const std::string& source);

// `base` with `over` merged in: mappings merge key by key, anything else in `over` replaces. New mappings; keys and
// values are shared with the inputs (not copied), so they keep their line marks for error messages.
YAML::Node merged_yaml(const YAML::Node& base, const YAML::Node& over);

// The teacher kd distils from: model.teacher, else model.init.
inline const std::string& kd_teacher_path(const ExperimentConfig& cfg) {
  return cfg.model.teacher.empty() ? cfg.model.init : cfg.model.teacher;
}

}  // namespace linspec::trainer
