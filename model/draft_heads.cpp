#include "model/draft_heads.h"

#include "core/ops.h"
#include "model/hdf5_util.h"
#include "model/json_fields.h"

namespace linspec {
namespace {

const char* kGroup = "draft/heads";

std::string block_name(int64_t k, int64_t j, const char* what) {
  return "head" + std::to_string(k) + "/res" + std::to_string(j) + "." + what;
}
std::string proj_name(int64_t k) { return "head" + std::to_string(k) + "/proj.weight"; }
// Parameter names use dots only (optimizer state keys): "head1/res0.weight" -> "head1.res0.weight".
std::string dotted(std::string s) {
  for (char& c : s)
    if (c == '/') c = '.';
  return s;
}

const Tensor& target_lm_head(const LlamaModel& target) {
  const ParameterStore& p = target.parameters();
  return p.get(target.config().tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

}  // namespace

void DraftHeadsConfig::validate(const std::string& where) const {
  if (count < 1 || count > 64) throw_input_error(where, ": draft heads count must be in [1, 64], got ", count);
  if (blocks < 0 || blocks > 16) throw_input_error(where, ": draft heads blocks must be in [0, 16], got ", blocks);
}

nlohmann::json draft_heads_config_to_json(const DraftHeadsConfig& c) {
  return {{"count", c.count}, {"blocks", c.blocks}, {"shared_projection", c.shared_projection}};
}

DraftHeadsConfig draft_heads_config_from_json(const nlohmann::json& j, const std::string& where) {
  using namespace json_fields;
  DraftHeadsConfig c;
  c.count = get<int64_t>(j, "count", where);
  c.blocks = get<int64_t>(j, "blocks", where);
  c.shared_projection = get_or<bool>(j, "shared_projection", false, where);
  c.validate(where);
  return c;
}

DraftHeads DraftHeads::init_from(const LlamaModel& target, const DraftHeadsConfig& cfg, bool requires_grad) {
  cfg.validate("draft heads");
  DraftHeads h(target, cfg);
  const int64_t D = target.config().hidden_size;
  const DType dt = target.options().dtype;
  for (int64_t k = 1; k <= cfg.count; ++k) {
    Head head;
    for (int64_t j = 0; j < cfg.blocks; ++j) {
      const Device dev = target.options().device;
      Tensor w = Tensor::zeros({D, D}, dt, dev), b = Tensor::zeros({D}, dt, dev);
      if (requires_grad) w.set_requires_grad(true), b.set_requires_grad(true);
      head.blocks.emplace_back(w, b);
    }
    if (!cfg.shared_projection) {
      head.proj = target_lm_head(target).detach().to(dt).clone();
      if (requires_grad) head.proj.set_requires_grad(true);
    }
    h.heads_.push_back(std::move(head));
  }
  return h;
}

DraftHeads DraftHeads::from_tensors(const LlamaModel& target, const DraftHeadsConfig& cfg,
                                    const std::map<std::string, Tensor>& tensors, const std::string& where,
                                    bool requires_grad) {
  cfg.validate(where);
  DraftHeads h = init_from(target, cfg, requires_grad);
  std::map<std::string, Tensor> expected = h.tensors();
  for (const auto& [name, t] : tensors)
    if (!expected.count(name))
      throw_input_error(where, ": tensor /", kGroup, "/", name, " is not part of ", cfg.count, " draft heads with ",
                        cfg.blocks, " blocks", cfg.shared_projection ? " and a shared projection" : "");
  for (auto& [name, dst] : expected) {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw_input_error(where, ": tensor /", kGroup, "/", name, " is missing");
    if (it->second.shape() != dst.shape())
      throw_input_error(where, ": tensor /", kGroup, "/", name, " has shape ", shape_str(it->second.shape()),
                        ", the heads need ", shape_str(dst.shape()));
    Tensor d = dst;  // shares storage with the head's tensor
    d.copy_from(it->second);
  }
  return h;
}

Tensor DraftHeads::features(int64_t k, const Tensor& hidden) const {
  LINSPEC_CHECK(k >= 1 && k <= count(), "draft head ", k, " of ", count());
  const auto prec = target_->options().precision;
  Tensor x = hidden;
  for (const auto& [w, b] : heads_[k - 1].blocks) x = ops::add(x, ops::silu(ops::linear(x, w, b, prec)));
  return x;
}

Tensor DraftHeads::logits(int64_t k, const Tensor& hidden) const {
  const Tensor x = features(k, hidden);
  const Head& head = heads_[k - 1];
  const Tensor& proj = head.proj_inference.defined() ? head.proj_inference : head.proj;
  return proj.defined() ? ops::linear(x, proj, {}, target_->options().precision) : target_->lm_head_frozen(x);
}

void DraftHeads::set_inference_weights(DType format) {
  LINSPEC_CHECK(format == DType::F32 || format == DType::BF16 || format == DType::Q8,
                "draft heads: inference weights must be f32, bf16 or q8, got ", dtype_name(format));
  for (Head& head : heads_) {
    LINSPEC_CHECK(!head.proj.defined() || !head.proj.requires_grad(),
                  "draft heads: inference weights are for heads that do not train");
    if (!head.proj.defined() || format == DType::F32) head.proj_inference = Tensor();
    else head.proj_inference = format == DType::Q8 ? ops::quantize_q8(head.proj) : head.proj.detach().to(format);
  }
  inference_weights_ = format;
}

std::vector<Tensor> DraftHeads::all_logits(const Tensor& hidden, int64_t n) const {
  n = n == 0 ? count() : n;
  LINSPEC_CHECK(n >= 1 && n <= count(), "draft heads: ", n, " of ", count());
  std::vector<Tensor> out;
  if (!cfg_.shared_projection || n == 1) {
    for (int64_t k = 1; k <= n; ++k) out.push_back(logits(k, hidden));
    return out;
  }
  const int64_t D = hidden.size(-1), rows = hidden.numel() / D;
  std::vector<Tensor> feats;
  for (int64_t k = 1; k <= n; ++k) feats.push_back(ops::reshape(features(k, hidden), {rows, D}));
  const Tensor all = target_->lm_head_frozen(ops::concat(feats, 0));  // [n·rows, V]
  Shape shape = hidden.shape();
  shape.back() = all.size(-1);
  for (int64_t k = 0; k < n; ++k) out.push_back(ops::reshape(ops::slice(all, 0, k * rows, (k + 1) * rows), shape));
  return out;
}

std::vector<std::pair<std::string, Tensor>> DraftHeads::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : tensors()) out.emplace_back(dotted(name), t);
  return out;
}

std::map<std::string, Tensor> DraftHeads::tensors() const {
  std::map<std::string, Tensor> out;
  for (int64_t k = 1; k <= count(); ++k) {
    const Head& head = heads_[k - 1];
    for (int64_t j = 0; j < static_cast<int64_t>(head.blocks.size()); ++j) {
      out[block_name(k, j, "weight")] = head.blocks[j].first;
      out[block_name(k, j, "bias")] = head.blocks[j].second;
    }
    if (head.proj.defined()) out[proj_name(k)] = head.proj;
  }
  return out;
}

int64_t DraftHeads::bytes() const {
  int64_t b = 0;
  for (const auto& [name, t] : tensors()) b += static_cast<int64_t>(t.nbytes());
  return b;
}

void write_draft_heads(H5Handle file, const DraftHeads& heads) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : heads.tensors()) out[name] = t.detach();
  write_configured_group(file, kGroup, out, draft_heads_config_to_json(heads.config()));
}

bool has_draft_heads(const std::string& path) {
  return hdf5_file_has(path, kGroup);
}

DraftHeads load_draft_heads(const std::string& path, const LlamaModel& target, bool requires_grad) {
  const auto g = read_configured_group(path, kGroup);
  if (!g) throw_input_error(path, ": no draft heads (/", kGroup, "); train them with objectives.draft_heads");
  const DraftHeadsConfig cfg = draft_heads_config_from_json(g->config, path + " (/" + kGroup + " config)");
  return DraftHeads::from_tensors(target, cfg, g->tensors, path, requires_grad);
}

}  // namespace linspec
