#include "trainer/drafts.h"

#include <filesystem>

#include "core/error.h"
#include "data/token_shards.h"
#include "model/draft_model.h"
#include "trainer/config.h"
#include "trainer/trainable.h"

namespace linspec::trainer {
namespace {

const char* kHeadsPrefix = "draft_heads.";
const char* kModelPrefix = "draft_model.";
const char* kEaglePrefix = "eagle.";

// The token in `trainable` and the objective's weight must agree: training a draft is asked for by both.
void check_agreement(const ExperimentConfig& cfg, bool listed, double weight, const char* token, const char* key) {
  if (weight > 0 && !listed)
    throw_input_error(cfg.source, ": key 'objectives.", key, ".weight' is ", weight, " but key 'trainable' does not list ",
                      token, " (add ", token, " to trainable, or set the weight to 0)");
  if (listed && weight <= 0)
    throw_input_error(cfg.source, ": key 'trainable' lists ", token, " but 'objectives.", key,
                      ".weight' is 0 (give it a weight, or remove ", token, " from trainable)");
}

std::unique_ptr<DraftHeads> build_heads(const ExperimentConfig& cfg, const LlamaModel& target,
                                        const std::string& resume_path, std::ostream& log) {
  if (resume_path.empty()) {
    if (cfg.objectives.draft_heads_count < 1)
      throw_input_error(cfg.source, ": key 'objectives.draft_heads.count' must be at least 1 to train draft heads");
    DraftHeadsConfig hc;
    hc.count = cfg.objectives.draft_heads_count;
    hc.shared_projection = cfg.objectives.draft_heads_shared_projection;
    log << "train: " << hc.count << " fresh draft heads (" << hc.blocks << " residual block each, "
        << (hc.shared_projection ? "projecting with the LM head" : "own copies of the LM head") << ")\n";
    return std::make_unique<DraftHeads>(DraftHeads::init_from(target, hc, /*requires_grad=*/true));
  }
  auto heads = std::make_unique<DraftHeads>(load_draft_heads(resume_path, target, /*requires_grad=*/true));
  if (heads->count() != cfg.objectives.draft_heads_count)
    throw_input_error(resume_path, ": the snapshot holds ", heads->count(), " draft heads but key "
                      "'objectives.draft_heads.count' asks for ", cfg.objectives.draft_heads_count);
  return heads;
}

std::unique_ptr<LlamaModel> build_model(const ExperimentConfig& cfg, const LlamaModel& target,
                                        const LlamaOptions& options, const std::string& resume_path,
                                        std::ostream& log) {
  const auto& o = cfg.objectives;
  std::unique_ptr<LlamaModel> draft;
  if (!resume_path.empty()) {
    if (!has_draft_model(resume_path))
      throw_input_error(resume_path, ": the snapshot has no /draft/model but key 'objectives.draft_model.weight' is ",
                        o.draft_model_weight, " (it was written by a run without a draft model)");
    draft = std::make_unique<LlamaModel>(load_draft_model(resume_path, options));
  } else if (o.draft_model_init == "first-layers") {
    if (o.draft_model_layers < 1 || o.draft_model_layers > target.num_layers())
      throw_input_error(cfg.source, ": key 'objectives.draft_model.layers' = ", o.draft_model_layers,
                        " must be in [1, ", target.num_layers(), "] (the target's layers) with init first-layers");
    draft = std::make_unique<LlamaModel>(make_draft_model(target, o.draft_model_layers, options));
    log << "train: draft model = the first " << o.draft_model_layers << " layers of the target\n";
  } else {
    if (!std::filesystem::is_regular_file(o.draft_model_init))
      throw_input_error(cfg.source, ": key 'objectives.draft_model.init': '", o.draft_model_init,
                        "' is neither first-layers nor an existing checkpoint file");
    draft = std::make_unique<LlamaModel>(load_draft_model(o.draft_model_init, options));
    if (o.draft_model_layers != 0 && o.draft_model_layers != draft->num_layers())
      throw_input_error(cfg.source, ": key 'objectives.draft_model.layers' = ", o.draft_model_layers, " but ",
                        o.draft_model_init, " holds a ", draft->num_layers(), "-layer draft (set it to 0 or ",
                        draft->num_layers(), ")");
    log << "train: draft model from " << o.draft_model_init << " (" << draft->num_layers() << " layers)\n";
  }
  const std::string where = resume_path.empty() ? o.draft_model_init : resume_path;
  if (draft->config().vocab_size != target.config().vocab_size)
    throw_input_error(where, ": the draft model's vocabulary (", draft->config().vocab_size,
                      ") differs from the target's (", target.config().vocab_size, "); key 'objectives.draft_model.init'");
  return draft;
}

std::unique_ptr<FeatureDraft> build_eagle(const ExperimentConfig& cfg, const LlamaModel& target,
                                          const std::string& resume_path, std::ostream& log) {
  const int64_t n = cfg.objectives.eagle_vocab, V = target.config().vocab_size;
  // A stored draft (the snapshot resumed, or objectives.eagle.init) must have the vocabulary the config asks for.
  auto stored = [&](const std::string& path) {
    auto d = std::make_unique<FeatureDraft>(load_feature_draft(path, target, /*requires_grad=*/true));
    if (static_cast<int64_t>(d->vocab_ids().size()) != n)
      throw_input_error(path, ": its feature draft has a vocabulary of ", d->vocab_ids().size(),
                        " (0: full) but key 'objectives.eagle.vocab' asks for ", n);
    return d;
  };
  if (!resume_path.empty()) {
    if (!has_feature_draft(resume_path))
      throw_input_error(resume_path, ": the snapshot has no /draft/eagle but key 'objectives.eagle.weight' is ",
                        cfg.objectives.eagle_weight, " (it was written by a run without one)");
    return stored(resume_path);
  }
  if (!cfg.objectives.eagle_init.empty()) {
    const std::string& init = cfg.objectives.eagle_init;
    if (!std::filesystem::is_regular_file(init))
      throw_input_error(cfg.source, ": key 'objectives.eagle.init': '", init, "' is not a checkpoint file");
    log << "train: feature draft from " << init << "\n";
    return stored(init);
  }
  if (n > V)
    throw_input_error(cfg.source, ": key 'objectives.eagle.vocab' = ", n, " exceeds the model's vocabulary (", V, ")");
  std::vector<int32_t> ids;
  if (n > 0) ids = most_frequent_tokens(load_token_shards(cfg.data.path).train.tokens, V, n);
  log << "train: fresh feature draft (the target's last layer, " << (n > 0 ? std::to_string(n) : "full")
      << " vocabulary)\n";
  return std::make_unique<FeatureDraft>(FeatureDraft::init_from(target, std::move(ids), /*requires_grad=*/true));
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> Drafts::trainable_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (heads)
    for (const auto& [name, t] : heads->named_parameters()) out.emplace_back(kHeadsPrefix + name, t);
  if (model)
    for (const auto& [name, t] : model->named_parameters())
      if (t.requires_grad()) out.emplace_back(kModelPrefix + name, t);  // a preset's fixed mixer tensors stay fixed
  if (eagle)
    for (const auto& [name, t] : eagle->named_parameters()) out.emplace_back(kEaglePrefix + name, t);
  return out;
}

void Drafts::write(H5Handle file) const {
  if (heads) write_draft_heads(file, *heads);
  if (model) write_draft_model(file, *model);
  if (eagle) write_feature_draft(file, *eagle);
}

Drafts build_drafts(const ExperimentConfig& cfg, const LlamaModel& target, const LlamaOptions& options,
                    const std::string& resume_path, std::ostream& log) {
  const auto& o = cfg.objectives;
  check_agreement(cfg, trains_heads(cfg.trainable), o.draft_heads_weight, "heads", "draft_heads");
  check_agreement(cfg, trains_draft_model(cfg.trainable), o.draft_model_weight, "draft", "draft_model");
  check_agreement(cfg, trains_feature_draft(cfg.trainable), o.eagle_weight, "eagle", "eagle");
  Drafts d;
  d.settings.heads_weight = o.draft_heads_weight;
  d.settings.heads.decay = o.draft_heads_decay;
  d.settings.heads.target = o.draft_heads_target;
  d.settings.model_weight = o.draft_model_weight;
  d.settings.divergence = parse_divergence(o.draft_model_divergence, cfg.source + ": key 'objectives.draft_model.divergence'");
  d.settings.on_policy = o.draft_model_on_policy;
  d.settings.eagle_weight = o.eagle_weight;
  d.settings.eagle_regression = o.eagle_regression;
  d.settings.eagle_unroll = o.eagle_unroll;
  if (o.draft_heads_weight > 0) d.heads = build_heads(cfg, target, resume_path, log);
  if (o.draft_model_weight > 0) {
    LlamaOptions opts = options;
    opts.requires_grad = true;
    opts.recompute = cfg.train.recompute;
    d.model = build_model(cfg, target, opts, resume_path, log);
  }
  if (o.eagle_weight > 0) d.eagle = build_eagle(cfg, target, resume_path, log);
  return d;
}

}  // namespace linspec::trainer
