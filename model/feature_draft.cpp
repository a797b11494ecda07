#include "model/feature_draft.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "attention/spec.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "model/draft_model.h"
#include "model/hdf5_util.h"
#include "model/json_fields.h"
#include "model/llama_tensors.h"
#include "model/op_profile.h"

namespace linspec {
namespace {

const char* kGroup = "draft/eagle";

// The target's config cut to one layer whose token mixer is that of the target's last layer.
ModelConfig layer_config(const ModelConfig& target) {
  ModelConfig c = draft_model_config(target, 1);
  if (!target.attention.is_null()) {
    AttentionSpec spec = attention_spec_from_json(target.attention, target.num_layers, "target model config");
    const bool last_softmax = spec.keeps_softmax(target.num_layers - 1);
    spec.keep_softmax_layers = last_softmax ? std::vector<int64_t>{0} : std::vector<int64_t>{};
    c.attention = attention_spec_to_json(spec);
  }
  return c;
}

// The one-layer model: `layer` (tensors named "layers.0.*" and "norm.weight") plus the target's embedding and LM
// head, which it never trains (aliased, not copied).
std::unique_ptr<LlamaModel> make_body(const LlamaModel& target, const ModelConfig& cfg,
                                      std::map<std::string, Tensor> layer, bool requires_grad,
                                      const std::string& where) {
  for (const auto& [name, t] : target.checkpoint_tensors())
    if (name == "embed_tokens.weight" || name == "lm_head.weight") layer[name] = t;
  LlamaOptions opt = target.options();
  opt.requires_grad = requires_grad;
  return std::make_unique<LlamaModel>(LlamaModel::from_tensors(cfg, layer, opt, where));
}

bool is_layer_tensor(const std::string& name) { return name.rfind("layers.0.", 0) == 0 || name == "norm.weight"; }

Tensor gather_rows(const Tensor& table, const std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  return ops::embedding(table.detach(), Tensor::from_vector(ids, {static_cast<int64_t>(ids.size())}).to(table.device()));
}

const Tensor& lm_head_table(const LlamaModel& target) {
  return target.parameters().get(target.config().tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

void check_vocab_ids(const std::vector<int32_t>& ids, int64_t V, const std::string& where) {
  std::set<int32_t> seen;
  for (int32_t id : ids) {
    if (id < 0 || id >= V) throw_input_error(where, ": vocab_ids holds ", id, ", outside the vocabulary [0, ", V, ")");
    if (!seen.insert(id).second) throw_input_error(where, ": vocab_ids holds ", id, " twice");
  }
}

}  // namespace

FeatureDraft::FeatureDraft(const LlamaModel& target, std::unique_ptr<LlamaModel> body, Tensor fc,
                           std::vector<int32_t> vocab_ids)
    : target_(&target), body_(std::move(body)), fc_(std::move(fc)), vocab_ids_(std::move(vocab_ids)) {
  if (!vocab_ids_.empty()) vocab_proj_ = gather_rows(lm_head_table(target), vocab_ids_);
}

FeatureDraft FeatureDraft::init_from(const LlamaModel& target, std::vector<int32_t> vocab_ids, bool requires_grad) {
  const ModelConfig& tc = target.config();
  check_vocab_ids(vocab_ids, tc.vocab_size, "feature draft");
  const std::string last = "layers." + std::to_string(tc.num_layers - 1) + ".";
  std::map<std::string, Tensor> layer;
  for (const auto& [name, t] : target.checkpoint_tensors()) {
    if (name.rfind(last, 0) == 0) layer["layers.0." + name.substr(last.size())] = t.clone();
    if (name == "norm.weight") layer[name] = t.clone();
  }
  auto body = make_body(target, layer_config(tc), std::move(layer), requires_grad, "feature draft (init)");
  const int64_t D = tc.hidden_size;
  std::vector<float> eye(static_cast<size_t>(D * 2 * D), 0.0f);  // [I | I]: u = f + embed(x) before training
  for (int64_t i = 0; i < D; ++i) eye[i * 2 * D + i] = eye[i * 2 * D + D + i] = 1.0f;
  Tensor fc = Tensor::from_vector(eye, {D, 2 * D}).to(target.options().dtype).to(target.options().device);
  if (requires_grad) fc.set_requires_grad(true);
  return FeatureDraft(target, std::move(body), fc, std::move(vocab_ids));
}

FeatureDraft FeatureDraft::from_tensors(const LlamaModel& target, const nlohmann::json& config,
                                        const std::map<std::string, Tensor>& tensors, const std::string& where,
                                        bool requires_grad) {
  using namespace json_fields;
  const ModelConfig& tc = target.config();
  const int64_t n = get<int64_t>(config, "vocab", where + " config");
  if (!config.contains("model")) throw_input_error(where, ": config has no key 'model'");
  const ModelConfig lc = model_config_from_json(config.at("model"), where + " config.model");
  if (lc.num_layers != 1 || lc.hidden_size != tc.hidden_size || lc.num_heads != tc.num_heads ||
      lc.num_kv_heads != tc.num_kv_heads || lc.head_dim != tc.head_dim ||
      lc.intermediate_size != tc.intermediate_size || lc.vocab_size != tc.vocab_size)
    throw_input_error(where, ": config.model is not one layer of the target's shape (", lc.num_layers, " layers, hidden ",
                      lc.hidden_size, ", vocab ", lc.vocab_size, "; the target: hidden ", tc.hidden_size, ", vocab ",
                      tc.vocab_size, ")");
  std::map<std::string, Tensor> layer;
  Tensor fc;
  std::vector<int32_t> ids;
  for (const auto& [name, t] : tensors) {
    if (name == "fc.weight") fc = t;
    else if (name == "vocab_ids") {
      if (t.dtype() != DType::I32 || t.dim() != 1)
        throw_input_error(where, ": tensor /", kGroup, "/vocab_ids must be i32 [N], got ", dtype_name(t.dtype()), " ",
                          shape_str(t.shape()));
      ids = t.to_vector<int32_t>();
    } else if (is_layer_tensor(name)) layer[name] = t;
    else throw_input_error(where, ": tensor /", kGroup, "/", name, " is not part of a feature draft");
  }
  const int64_t D = tc.hidden_size;
  if (!fc.defined()) throw_input_error(where, ": tensor /", kGroup, "/fc.weight is missing");
  if (fc.shape() != Shape{D, 2 * D})
    throw_input_error(where, ": tensor /", kGroup, "/fc.weight has shape ", shape_str(fc.shape()), ", the draft needs ",
                      shape_str(Shape{D, 2 * D}));
  if (static_cast<int64_t>(ids.size()) != n)
    throw_input_error(where, ": config says vocab ", n, " but /", kGroup, "/vocab_ids holds ", ids.size(), " ids");
  check_vocab_ids(ids, tc.vocab_size, where + " (/" + kGroup + ")");
  auto body = make_body(target, lc, std::move(layer), requires_grad, where + " (/" + kGroup + ")");
  fc = fc.to(target.options().dtype).contiguous().to(target.options().device);
  if (requires_grad) fc.set_requires_grad(true);
  return FeatureDraft(target, std::move(body), fc, std::move(ids));
}

Tensor FeatureDraft::inputs(const Tensor& features, const Tensor& next_ids) const {
  const Tensor& table = target_->parameters().get("model.embed_tokens.weight");
  const Tensor e = ops::embedding(table.detach(), next_ids.to(table.device()));
  return ops::linear(ops::concat({features, e}, -1), fc_, {}, body_->options().precision);
}

Tensor FeatureDraft::forward(const Tensor& features, const Tensor& next_ids) const {
  LINSPEC_CHECK(features.dim() == 3 && next_ids.dim() == 2 && features.size(0) == next_ids.size(0) &&
                    features.size(1) == next_ids.size(1),
                "feature draft: features ", shape_str(features.shape()), " and ids ", shape_str(next_ids.shape()));
  const ModelConfig& c = body_->config();
  const Tensor y = decoder_layer(body_->layer(0), c, body_->options().precision, body_->rope_inv_freq(), 0,
                                 inputs(features, next_ids), LayerPass{})
                       .y;
  return ops::rmsnorm(y, body_->parameters().get("model.norm.weight"), c.rms_norm_eps);
}

Tensor FeatureDraft::full_logits(const Tensor& predicted) const { return target_->lm_head_frozen(predicted); }

DecodeState FeatureDraft::new_state(int64_t max_len) const { return body_->new_decode_state(1, max_len); }

Tensor FeatureDraft::absorb(const std::vector<DecodeState*>& states, const Tensor& features,
                            const std::vector<int32_t>& next_ids, const std::vector<int64_t>& counts) const {
  NoGradGuard no_grad;
  const ModelConfig& c = body_->config();
  const int64_t N = static_cast<int64_t>(next_ids.size()), D = c.hidden_size;
  LINSPEC_CHECK(states.size() == counts.size() && features.numel() == N * D, "feature draft absorb: ", states.size(),
                " states, ", counts.size(), " counts, ", N, " ids, features ", shape_str(features.shape()));
  LINSPEC_CHECK(std::set<DecodeState*>(states.begin(), states.end()).size() == states.size(),
                "feature draft absorb: a state appears twice");
  PackedPass pass;
  int64_t at = 0;
  for (size_t j = 0; j < states.size(); ++j) {
    LINSPEC_CHECK(counts[j] >= 1 && states[j]->layers.size() == 1, "feature draft absorb: sequence ", j);
    const int64_t p = states[j]->position();
    for (int64_t t = 0; t < counts[j]; ++t) pass.positions.push_back(p + t);
    pass.sequences.push_back({.state = states[j]->layers[0].get(), .begin = at, .end = at + counts[j]});
    at += counts[j];
  }
  LINSPEC_CHECK(at == N, "feature draft absorb: counts add up to ", at, ", ", N, " ids given");
  const Tensor u = inputs(features.contiguous().view({1, N, D}), Tensor::from_vector(next_ids, {1, N}));
  pass.rope = ops::rope_rows_at_positions(pass.positions, body_->rope_inv_freq(), u.dtype());
  LayerPass lp;
  lp.packed = &pass;
  const Tensor y = decoder_layer(body_->layer(0), c, body_->options().precision, body_->rope_inv_freq(), 0, u, lp).y;
  return ops::rmsnorm(y, body_->parameters().get("model.norm.weight"), c.rms_norm_eps).view({N, D});
}

Tensor FeatureDraft::logits(const Tensor& predicted) const {
  if (vocab_ids_.empty()) return profiled("draft_lm_head", [&] { return target_->lm_head(predicted); });
  const Tensor& w = vocab_proj_inference_.defined() ? vocab_proj_inference_ : vocab_proj_;
  return profiled("draft_lm_head", [&] { return ops::linear(predicted, w, {}, body_->options().precision); });
}

int64_t FeatureDraft::vocab() const {
  return vocab_ids_.empty() ? target_->config().vocab_size : static_cast<int64_t>(vocab_ids_.size());
}

void FeatureDraft::set_inference_weights(DType format) {
  body_->set_inference_weights(format, /*lm_head=*/false);
  if (vocab_ids_.empty() || format == DType::F32) vocab_proj_inference_ = Tensor();
  else vocab_proj_inference_ = format == DType::Q8 ? ops::quantize_q8(vocab_proj_) : vocab_proj_.to(format);
}

std::vector<std::pair<std::string, Tensor>> FeatureDraft::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (fc_.requires_grad()) out.emplace_back("fc.weight", fc_);
  for (const auto& [name, t] : body_->named_parameters())
    if (t.requires_grad() && is_layer_tensor(linspec_tensor_name(name))) out.emplace_back(name, t);
  return out;
}

std::map<std::string, Tensor> FeatureDraft::tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : body_->checkpoint_tensors())
    if (is_layer_tensor(name)) out[name] = t;
  out["fc.weight"] = fc_.detach();
  if (!vocab_ids_.empty()) out["vocab_ids"] = Tensor::from_vector(vocab_ids_, {static_cast<int64_t>(vocab_ids_.size())});
  return out;
}

nlohmann::json FeatureDraft::config_json() const {
  return {{"vocab", static_cast<int64_t>(vocab_ids_.size())}, {"model", nlohmann::json(body_->config())}};
}

int64_t FeatureDraft::bytes() const {
  int64_t b = vocab_proj_.defined() ? static_cast<int64_t>(vocab_proj_.nbytes()) : 0;
  for (const auto& [name, t] : tensors()) b += static_cast<int64_t>(t.nbytes());
  return b;
}

std::vector<int32_t> most_frequent_tokens(const std::vector<uint32_t>& tokens, int64_t vocab_size, int64_t n) {
  LINSPEC_CHECK(n >= 1 && n <= vocab_size, "most_frequent_tokens: ", n, " of ", vocab_size);
  std::vector<int64_t> count(static_cast<size_t>(vocab_size), 0);
  for (uint32_t t : tokens)
    if (t < static_cast<uint64_t>(vocab_size)) ++count[t];
  std::vector<int32_t> ids(static_cast<size_t>(vocab_size));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return count[a] > count[b]; });
  ids.resize(static_cast<size_t>(n));
  return ids;
}

void write_feature_draft(H5Handle file, const FeatureDraft& draft) {
  write_configured_group(file, kGroup, draft.tensors(), draft.config_json());
}

bool has_feature_draft(const std::string& path) {
  return hdf5_file_has(path, kGroup);
}

FeatureDraft load_feature_draft(const std::string& path, const LlamaModel& target, bool requires_grad) {
  const auto g = read_configured_group(path, kGroup);
  if (!g) throw_input_error(path, ": no feature draft (/", kGroup, "); train one with objectives.eagle");
  if (!g->config.is_object()) throw_input_error(path, ": /", kGroup, " attribute 'config' is not a JSON object");
  return FeatureDraft::from_tensors(target, g->config, g->tensors, path, requires_grad);
}

}  // namespace linspec
