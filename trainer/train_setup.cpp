#include "trainer/train_setup.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "attention/linear_mixers.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "model/llama_tensors.h"
#include "trainer/step_profile.h"
#include "trainer/trainable.h"

namespace linspec::trainer {
namespace {

void require_file(const ExperimentConfig& cfg, const std::string& key, const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw_input_error(cfg.source, ": key '", key, "': file '", path, "' does not exist");
}

std::string attrs_value(const std::map<std::string, std::string>& attrs, const std::string& key) {
  auto it = attrs.find(key);
  return it == attrs.end() ? "" : it->second;
}

// A copy with its own storage (the kd teacher must not see the student's updates).
std::map<std::string, Tensor> cloned(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out[name] = t.clone();
  return out;
}

// The softmax model kd distils from (kd_teacher_path: model.teacher, else model.init), without gradients. It shares
// nothing with the student: model.init's tensors are cloned when it is the teacher.
std::unique_ptr<LlamaModel> load_kd_teacher(const ExperimentConfig& cfg, const Checkpoint& init, bool resumed,
                                            LlamaOptions opts, std::ostream& log) {
  const std::string& path = kd_teacher_path(cfg);
  const std::string key = cfg.model.teacher.empty() ? "model.init" : "model.teacher";
  Checkpoint loaded;
  const bool is_init = path == cfg.model.init && !resumed;
  if (!is_init) {
    if (!std::filesystem::is_regular_file(path))
      throw_input_error(cfg.source, ": key '", key, "': file '", path, "' does not exist");
    loaded = load_checkpoint(path);
    merge_lora_tensors(loaded.tensors, attrs_value(loaded.extra_attrs, "lora"), path);
  }
  const Checkpoint& t = is_init ? init : loaded;
  if (!t.config.attention.is_null())
    throw_input_error(cfg.source, ": objectives.kd needs a softmax teacher, but key '", key, "' names ", path,
                      ", which is linearized (set model.teacher to the original model)");
  if (tokenizer_fingerprint(t.tokenizer) != tokenizer_fingerprint(init.tokenizer))
    throw_input_error(path, ": the kd teacher's tokenizer differs from the student's (", cfg.model.init, "); key '",
                      key, "'");
  opts.requires_grad = false;
  log << "train: kd teacher " << path << "\n";
  return std::make_unique<LlamaModel>(
      LlamaModel::from_tensors(t.config, is_init ? cloned(t.tensors) : std::move(loaded.tensors), opts, path));
}

}  // namespace

linspec::AttentionSpec attention_spec_from_experiment(const ExperimentConfig& cfg) {
  const auto& a = cfg.model.attention;
  linspec::AttentionSpec spec;
  spec.preset = a.preset;
  spec.keep_softmax_layers.assign(cfg.model.keep_softmax_layers.begin(), cfg.model.keep_softmax_layers.end());
  spec.options = a.options;  // the model resolves them against the preset table
  return spec;
}

namespace {
// What "auto" means without a measurement: bf16 on a GPU (tensor cores), fp32 on a CPU without native bf16 dot
// products; empty for a CPU with them, where only a measurement can tell (resolve_auto_precision).
std::string auto_precision_without_probe(Device device) {
  if (device == Device::CUDA) return "bf16";
  return cpu_has_native_bf16() ? "" : "fp32";
}
}  // namespace

std::string training_precision(const ExperimentConfig& cfg, Device device) {
  if (cfg.train.precision != "auto") return cfg.train.precision;
  const std::string fixed = auto_precision_without_probe(device);
  return fixed.empty() ? "bf16" : fixed;
}

bool bf16_training_pays(double fp32_gflops, double bf16_gflops) { return bf16_gflops > 1.1 * fp32_gflops; }

void resolve_auto_precision(ExperimentConfig& cfg, Device device, Communicator* world, std::ostream& log) {
  if (cfg.train.precision != "auto") return;
  std::string why;
  if (const std::string fixed = auto_precision_without_probe(device); !fixed.empty()) {
    cfg.train.precision = fixed;
    if (fixed == "fp32") why = " (no native bf16 on this CPU)";
  } else {
    // n = 512 keeps the probe near a second (three kinds, best of >= 0.3 s each).
    const auto rates = measure_gemm_rates(device, 512, 3);
    const double f32 = gemm_ceiling_gflops(rates, "fp32"), bf16 = gemm_ceiling_gflops(rates, "bf16");
    double votes[1] = {bf16_training_pays(f32, bf16) ? 1.0 : 0.0};
    if (world) world->allreduce_sum(votes, 1);
    const bool all = votes[0] >= (world ? world->world() : 1) - 0.5;
    cfg.train.precision = all ? "bf16" : "fp32";
    std::ostringstream os;
    os.precision(0);
    os << std::fixed << " (native bf16; GEMM here: fp32 " << f32 << ", bf16 " << bf16 << " GFLOP/s"
       << (world && world->world() > 1 ? ", every rank's vote" : "") << ")";
    why = os.str();
  }
  log << "train: precision auto -> " << cfg.train.precision << why << "\n";
}

Device training_device(const ExperimentConfig& cfg) {
  const Device d = resolve_device(cfg.train.device, cfg.source + ": key 'train.device'");
  if (d == Device::CUDA) select_local_gpu();
  return d;
}

TrainSetup build_training(const ExperimentConfig& cfg, const LoadedSnapshot* resume, std::ostream& log,
                          Device device) {
  require_file(cfg, "model.init", cfg.model.init);
  require_file(cfg, "data.path", cfg.data.path);
  TrainSetup s;
  s.objectives = {cfg.objectives.ce, cfg.objectives.attention_transfer, cfg.objectives.kd_weight,
                  cfg.objectives.kd_temperature};
  if (s.objectives.ce <= 0 && s.objectives.attention_transfer <= 0 && s.objectives.kd <= 0 &&
      cfg.objectives.draft_heads_weight <= 0 && cfg.objectives.draft_model_weight <= 0 &&
      cfg.objectives.eagle_weight <= 0)
    throw_input_error(cfg.source, ": every objective weight (objectives.ce, attention_transfer, kd.weight, "
                      "draft_heads.weight, draft_model.weight, eagle.weight) is 0");

  const bool kd = s.objectives.kd > 0;
  // A resumed run needs nothing from model.init but what the snapshot already carries.
  if (resume) {
    s.init.config = resume->model.config;
    s.init.tokenizer = resume->model.tokenizer;
    s.init.extra_attrs = resume->model.extra_attrs;
  } else {
    s.init = load_checkpoint(cfg.model.init);
    // An init that carries LoRA adapters (a snapshot of an earlier stage) starts from its merged weights.
    const int merged = merge_lora_tensors(s.init.tensors, attrs_value(s.init.extra_attrs, "lora"), cfg.model.init);
    if (merged > 0) log << "train: merged " << merged << " LoRA adapters of " << cfg.model.init << " into its weights\n";
    s.init.extra_attrs.erase("lora");
  }

  s.data =
      load_token_shards(cfg.data.path, s.init.config.vocab_size);  // ids checked once, here (exit 2 naming the shard)
  const uint64_t fp = tokenizer_fingerprint(s.init.tokenizer);
  if (s.data.tokenizer_fingerprint != fp)
    throw_input_error(cfg.data.path, ": tokenizer fingerprint ", xxh64_hex(s.data.tokenizer_fingerprint),
                      " differs from the model's (", xxh64_hex(fp), "); run `linspec prepare --tokenizer ",
                      cfg.model.init, "` again");

  LlamaOptions opts;
  const std::string precision = training_precision(cfg, device);
  opts.precision = precision == "bf16" ? ops::MatmulPrecision::BF16 : ops::MatmulPrecision::F32;
  opts.requires_grad = true;  // mixers create their learnable tensors as leaves; the Student decides what trains
  opts.device = device;
  const linspec::AttentionSpec wanted = attention_spec_from_experiment(cfg);
  const bool init_linear = !s.init.config.attention.is_null();

  if (kd) s.teacher = load_kd_teacher(cfg, s.init, resume != nullptr, opts, log);

  if (resume) {
    s.model = std::make_unique<LlamaModel>(
        LlamaModel::from_tensors(resume->model.config, resume->model.tensors, opts, resume->path));
  } else {
    s.model = std::make_unique<LlamaModel>(LlamaModel::from_tensors(s.init.config, s.init.tensors, opts, cfg.model.init));
    if (!init_linear) {
      if (!wanted.is_softmax()) s.model->set_attention_spec(wanted);
    }
  }
  s.init.tensors.clear();  // the model shares or copied what it needs
  // A linearized init or a snapshot brings its own attention; it must be the one the config names.
  const linspec::AttentionSpec have = s.model->attention_spec();
  auto sorted = [](std::vector<int64_t> v) { return std::sort(v.begin(), v.end()), v; };
  if (have.preset != wanted.preset ||
      (!have.is_softmax() && sorted(have.keep_softmax_layers) != sorted(wanted.keep_softmax_layers)))
    throw_input_error(cfg.source, ": key 'model.attention.preset' / 'model.keep_softmax_layers' ask for '",
                      wanted.preset, "' but ", resume ? resume->path : cfg.model.init, " holds a '", have.preset,
                      "' model with a different layout (set model.attention to match it)");
  log << "train: attention " << have.preset << " " << attention_spec_to_json(have).dump() << "\n";

  if (trains_lora(cfg.trainable)) {
    if (cfg.lora.rank <= 0) throw_input_error(cfg.source, ": key 'trainable' lists lora but lora.rank is 0");
    LoraConfig lc;
    lc.rank = cfg.lora.rank, lc.alpha = cfg.lora.alpha, lc.dropout = cfg.lora.dropout, lc.targets = cfg.lora.targets;
    s.lora = std::make_unique<LoraSet>(s.model->config(), lc, static_cast<uint64_t>(cfg.train.seed), DType::F32, device);
    if (resume) s.lora->load(resume->model.tensors, resume->path);
  }
  s.drafts = build_drafts(cfg, *s.model, opts, resume ? resume->path : "", log);
  const std::set<std::string> trainable = select_trainable(*s.model, cfg.trainable);
  if (trainable.empty() && !s.lora && !s.drafts.any())
    throw_input_error(cfg.source, ": key 'trainable' selects no tensor of this model (",
                      have.is_softmax() ? "attention_new needs a linear-attention preset" : "check the list", ")");
  StudentOptions so;
  so.precision = opts.precision;
  so.recompute = cfg.train.recompute;
  s.student = std::make_unique<Student>(*s.model, s.lora.get(), trainable, so);
  return s;
}

std::vector<std::pair<std::string, Tensor>> TrainSetup::trainable_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out = student->trainable_parameters();
  for (auto& p : drafts.trainable_parameters()) out.push_back(std::move(p));
  return out;
}

std::vector<int64_t> TrainSetup::trainable_stages() const {
  std::vector<int64_t> out = student->trainable_stages();
  out.resize(out.size() + drafts.trainable_parameters().size(), model->num_layers());
  return out;
}

SnapshotModelPart snapshot_model_part(const TrainSetup& s, const ExperimentConfig& cfg) {
  SnapshotModelPart part;
  if (s.drafts.any()) part.drafts = [&d = s.drafts](H5Handle file) { d.write(file); };
  Checkpoint& c = part.checkpoint;
  c.config = s.model->config();
  c.tensors = s.model->checkpoint_tensors();
  if (s.lora)
    for (const auto& [name, t] : s.lora->named_parameters()) c.tensors[linspec_tensor_name(name)] = t.detach();
  c.tokenizer = s.init.tokenizer;
  c.config_yaml = cfg.resolved_yaml();
  c.extra_attrs = s.init.extra_attrs;
  if (s.lora) c.extra_attrs["lora"] = s.lora->attrs_json();
  return part;
}

}  // namespace linspec::trainer
