#include "model/lora.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/philox.h"
#include "model/llama_tensors.h"

namespace linspec {
namespace {

constexpr LoraTarget kAllTargets[kLoraTargetCount] = {LoraTarget::Q,    LoraTarget::K,  LoraTarget::V,   LoraTarget::O,
                                                      LoraTarget::Gate, LoraTarget::Up, LoraTarget::Down};

using kernels::element_uniform;

template <typename T>
void fill_uniform(T* p, int64_t n, uint64_t key, double bound) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>((2.0 * element_uniform(key, i, 1) - 1.0) * bound);
}

// "layers.0.self_attn.q_proj.lora_A" -> ("layers.0.self_attn.q_proj", 'A')
bool split_lora_name(const std::string& name, std::string& base, char& which) {
  const std::string tag = ".lora_";
  if (name.size() < tag.size() + 1) return false;
  const size_t pos = name.size() - tag.size() - 1;
  if (name.compare(pos, tag.size(), tag) != 0) return false;
  which = name.back();
  if (which != 'A' && which != 'B') return false;
  base = name.substr(0, pos);
  return true;
}

}  // namespace

const char* lora_target_name(LoraTarget t) {
  static const char* names[] = {"q", "k", "v", "o", "gate", "up", "down"};
  return names[static_cast<int>(t)];
}

const char* lora_target_module(LoraTarget t) {
  static const char* names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  return names[static_cast<int>(t)];
}

LoraTarget lora_target_from_name(const std::string& name) {
  for (LoraTarget t : kAllTargets)
    if (name == lora_target_name(t)) return t;
  throw_input_error("lora.targets: unknown projection '", name, "' (expected q, k, v, o, gate, up, down)");
}

std::string lora_projection_name(int64_t layer, LoraTarget t) {
  return "model.layers." + std::to_string(layer) + "." + lora_target_module(t);
}

bool is_lora_tensor_name(const std::string& name) {
  std::string base;
  char which;
  return split_lora_name(name, base, which);
}

// ---- LoraAdapter ----

LoraAdapter::LoraAdapter(int64_t in, int64_t out, const LoraConfig& config, uint64_t seed, uint64_t stream, DType dtype,
                         Device device)
    : scale_(config.scale()), dropout_(config.dropout), stream_(stream) {
  LINSPEC_CHECK(config.rank > 0, "LoRA rank must be positive");
  LINSPEC_CHECK(dtype == DType::F32 || dtype == DType::F64, "LoRA adapters are f32 or f64");
  a_ = Tensor::empty({config.rank, in}, dtype);
  const uint64_t key = Philox(seed).fork(stream).seed();
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform_(a=√5): √(6 / ((1 + 5)·in))
  if (dtype == DType::F64) fill_uniform(a_.data<double>(), a_.numel(), key, bound);
  else fill_uniform(a_.data<float>(), a_.numel(), key, bound);
  a_ = a_.to(device);  // drawn on the host (element i depends only on (seed, i)), placed once
  b_ = Tensor::zeros({out, config.rank}, dtype, device);
  a_.set_requires_grad(true);
  b_.set_requires_grad(true);
}

LoraAdapter::LoraAdapter(Tensor a, Tensor b, double scale, double dropout, uint64_t stream)
    : a_(std::move(a)), b_(std::move(b)), scale_(scale), dropout_(dropout), stream_(stream) {
  LINSPEC_CHECK(a_.dim() == 2 && b_.dim() == 2 && a_.size(0) == b_.size(1), "LoRA: A ", shape_str(a_.shape()),
                " and B ", shape_str(b_.shape()), " do not chain");
}

Tensor LoraAdapter::apply(const Tensor& x, const Tensor& y, const LoraContext& ctx, ops::MatmulPrecision precision) const {
  Tensor in = x;
  if (ctx.training && dropout_ > 0) {
    const uint64_t key = Philox(ctx.dropout_key).fork(stream_).seed();
    in = ops::dropout(x, dropout_, key);  // drawn on x's device
  }
  // Scale the rank-r intermediate: r columns instead of `out`.
  const Tensor low = ops::scale(ops::linear(in, a_, {}, precision), scale_);
  return ops::add(y, ops::linear(low, b_, {}, precision));
}

Tensor LoraAdapter::delta() const {
  NoGradGuard no_grad;
  return ops::scale(ops::matmul(b_.detach(), a_.detach()), scale_);
}

// ---- LoraSet ----

LoraSet::LoraSet(const ModelConfig& m, const LoraConfig& config, uint64_t seed, DType dtype, Device device)
    : config_(config) {
  if (config.rank <= 0 || config.targets.empty()) return;
  const int64_t D = m.hidden_size, F = m.intermediate_size, q = m.num_heads * m.head_dim, kv = m.num_kv_heads * m.head_dim;
  std::vector<LoraTarget> targets;
  for (const auto& name : config.targets) {
    const LoraTarget t = lora_target_from_name(name);
    for (LoraTarget u : targets)
      if (u == t) throw_input_error("lora.targets: '", name, "' is listed twice");
    targets.push_back(t);
  }
  for (int64_t layer = 0; layer < m.num_layers; ++layer) {
    for (LoraTarget t : targets) {
      int64_t in = D, out = D;
      switch (t) {
        case LoraTarget::Q: out = q; break;
        case LoraTarget::K:
        case LoraTarget::V: out = kv; break;
        case LoraTarget::O: in = q; break;
        case LoraTarget::Gate:
        case LoraTarget::Up: out = F; break;
        case LoraTarget::Down: in = F; break;
      }
      const uint64_t stream = static_cast<uint64_t>(layer) * kLoraTargetCount + static_cast<int>(t);
      adapters_[{layer, static_cast<int>(t)}] = std::make_unique<LoraAdapter>(in, out, config, seed, stream, dtype, device);
    }
  }
}

const LoraAdapter* LoraSet::find(int64_t layer, LoraTarget t) const {
  auto it = adapters_.find({layer, static_cast<int>(t)});
  return it == adapters_.end() ? nullptr : it->second.get();
}

std::vector<std::pair<std::string, Tensor>> LoraSet::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [key, a] : adapters_) {
    const std::string base = lora_projection_name(key.first, static_cast<LoraTarget>(key.second));
    out.emplace_back(base + ".lora_A", a->A());
    out.emplace_back(base + ".lora_B", a->B());
  }
  return out;
}

void LoraSet::load(const std::map<std::string, Tensor>& tensors, const std::string& where) {
  // Validate everything first so a bad file leaves the adapters as they were.
  std::vector<std::pair<Tensor, Tensor>> copies;
  const std::map<std::string, const Tensor*> by_name = tensors_by_linspec_name(tensors);
  for (const auto& [name, param] : named_parameters()) {
    const std::string want = linspec_tensor_name(name);
    const auto it = by_name.find(want);
    const Tensor* src = it == by_name.end() ? nullptr : it->second;
    if (!src) throw_input_error(where, ": LoRA tensor ", want, " is missing");
    if (src->shape() != param.shape())
      throw_input_error(where, ": LoRA tensor ", want, " has shape ", shape_str(src->shape()),
                        ", lora.rank and the model need ", shape_str(param.shape()));
    copies.emplace_back(param, *src);
  }
  for (auto& [dst, src] : copies) dst.copy_from(src);
}

std::string LoraSet::attrs_json() const {
  return nlohmann::json{{"rank", config_.rank}, {"alpha", config_.alpha}, {"targets", config_.targets}}.dump();
}

// ---- merging ----

int merge_lora_tensors(std::map<std::string, Tensor>& tensors, const std::string& lora_attrs, const std::string& where) {
  std::map<std::string, std::pair<std::string, std::string>> found;  // base -> (A name, B name)
  for (const auto& [name, t] : tensors) {
    std::string base;
    char which;
    if (!split_lora_name(name, base, which)) continue;
    (which == 'A' ? found[base].first : found[base].second) = name;
  }
  if (found.empty()) return 0;
  double scale = 0;
  try {
    const auto j = nlohmann::json::parse(lora_attrs);
    scale = j.at("alpha").get<double>() / j.at("rank").get<double>();
  } catch (const std::exception& e) {
    throw_input_error(where, ": attribute 'lora' (", lora_attrs.empty() ? "missing" : lora_attrs,
                      ") must be JSON with rank and alpha: ", e.what());
  }
  NoGradGuard no_grad;
  for (const auto& [base, names] : found) {
    if (names.first.empty() || names.second.empty())
      throw_input_error(where, ": LoRA tensor ", base, names.first.empty() ? ".lora_A" : ".lora_B", " is missing");
    auto w = tensors.find(base + ".weight");
    if (w == tensors.end()) throw_input_error(where, ": LoRA adapter ", base, " has no base tensor ", base, ".weight");
    const Tensor a = tensors.at(names.first).to(DType::F32).contiguous();
    const Tensor b = tensors.at(names.second).to(DType::F32).contiguous();
    const Shape& ws = w->second.shape();
    if (a.dim() != 2 || b.dim() != 2 || a.size(0) != b.size(1) || ws != Shape{b.size(0), a.size(1)})
      throw_input_error(where, ": LoRA tensors ", base, ".lora_A ", shape_str(a.shape()), " and .lora_B ",
                        shape_str(b.shape()), " do not fit ", base, ".weight ", shape_str(ws));
    const DType keep = w->second.dtype();
    const Tensor merged = ops::add(w->second.to(DType::F32).contiguous(), ops::scale(ops::matmul(b, a), scale));
    w->second = merged.to(keep).contiguous();
    tensors.erase(names.first);
    tensors.erase(names.second);
  }
  return static_cast<int>(found.size());
}

}  // namespace linspec
