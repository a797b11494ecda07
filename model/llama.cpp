// LlamaModel: parameter registration (from a checkpoint's tensors or random), the parallel forward and the
// incremental decode, which share one layer function so they cannot drift apart.
#include "model/llama.h"

#include <cmath>

#include "core/autograd.h"
#include "core/rng.h"
#include "model/llama_tensors.h"
#include "model/op_profile.h"

namespace linspec {
namespace {

std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

// The model's parameters carry HF names; a source may spell them any way model/llama_tensors.h accepts.
std::string hf_name(const std::string& key) { return hf_tensor_name(linspec_tensor_name(key)); }

// N(0, std²) fill where element i depends only on (key, i): one Philox block per element, so the values do
// not depend on the thread count and the loop parallelises.
void fill_normal(Tensor& t, uint64_t key, double stddev) {
  const int64_t n = t.numel();
  const std::array<uint32_t, 2> k{static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)};
  auto draw = [&](int64_t i) {
    const auto r = philox4x32({static_cast<uint32_t>(i), static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32), 0u, 1u}, k);
    const double u1 = 1.0 - static_cast<double>(((static_cast<uint64_t>(r[0]) << 32) | r[1]) >> 11) * 0x1.0p-53;
    const double u2 = static_cast<double>(((static_cast<uint64_t>(r[2]) << 32) | r[3]) >> 11) * 0x1.0p-53;
    return stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  };
  if (t.dtype() == DType::F64) {
    double* p = t.data<double>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = draw(i);
  } else {
    float* p = t.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw(i));
  }
}

}  // namespace

int64_t DecodeState::bytes() const {
  int64_t b = 0;
  for (const auto& l : layers) b += l->bytes();
  return b;
}

std::vector<std::pair<std::string, Shape>> LlamaModel::expected_tensors(const ModelConfig& c) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, d = c.head_dim;
  const int64_t q_out = c.num_heads * d, kv_out = c.num_kv_heads * d;
  std::vector<std::pair<std::string, Shape>> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, D}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = layer_prefix(i);
    out.push_back({p + "input_layernorm.weight", {D}});
    out.push_back({p + "self_attn.q_proj.weight", {q_out, D}});
    if (c.attention_bias) out.push_back({p + "self_attn.q_proj.bias", {q_out}});
    out.push_back({p + "self_attn.k_proj.weight", {kv_out, D}});
    if (c.attention_bias) out.push_back({p + "self_attn.k_proj.bias", {kv_out}});
    out.push_back({p + "self_attn.v_proj.weight", {kv_out, D}});
    if (c.attention_bias) out.push_back({p + "self_attn.v_proj.bias", {kv_out}});
    out.push_back({p + "self_attn.o_proj.weight", {D, q_out}});
    if (c.attention_out_bias) out.push_back({p + "self_attn.o_proj.bias", {D}});
    out.push_back({p + "post_attention_layernorm.weight", {D}});
    out.push_back({p + "mlp.gate_proj.weight", {F, D}});
    out.push_back({p + "mlp.up_proj.weight", {F, D}});
    out.push_back({p + "mlp.down_proj.weight", {D, F}});
  }
  out.push_back({"model.norm.weight", {D}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, D}});
  return out;
}

LlamaModel::LlamaModel(const ModelConfig& config, const LlamaOptions& options)
    : config_(config), options_(options) {
  LINSPEC_CHECK(options.dtype == DType::F32 || options.dtype == DType::F64, "LlamaModel computes in f32 or f64, not ",
                dtype_name(options.dtype));
  const std::vector<float> freq = linspec::rope_inv_freq(config_);
  inv_freq_ = Tensor::from_vector(freq, {static_cast<int64_t>(freq.size())}).to(options.dtype).to(options.device);
}

void LlamaModel::register_parameters(const std::map<std::string, Tensor>* source, uint64_t seed,
                                     const std::string& where) {
  std::map<std::string, Tensor> by_name;
  if (source)
    for (const auto& [key, t] : *source) by_name[hf_name(key)] = t;

  const Philox streams(seed);
  uint64_t index = 0;
  std::map<std::string, Tensor> made;
  for (const auto& [name, shape] : expected_tensors(config_)) {
    Tensor t;
    if (source) {
      auto it = by_name.find(name);
      if (it == by_name.end()) throw_input_error(where, ": tensor ", name, " is missing");
      if (it->second.shape() != shape)
        throw_input_error(where, ": tensor ", name, " has shape ", shape_str(it->second.shape()), ", the config needs ",
                          shape_str(shape));
      // Shares storage with the source when the dtype already matches (no second copy of the weights).
      t = it->second.to(options_.dtype).contiguous().to(options_.device);
      t.set_requires_grad(false);
    } else {
      t = Tensor::empty(shape, options_.dtype);
      if (name.ends_with("norm.weight")) t.fill(1.0);
      else if (name.ends_with(".bias")) t.zero();
      else fill_normal(t, streams.fork(index).seed(), 0.02);
      t = t.to(options_.device);
    }
    ++index;
    if (options_.requires_grad) t.set_requires_grad(true);
    made[name] = params_.add(name, t);
  }

  auto get = [&](const std::string& n) { return made.count(n) ? made.at(n) : Tensor(); };
  embed_tokens_ = get("model.embed_tokens.weight");
  final_norm_ = get("model.norm.weight");
  lm_head_ = config_.tie_word_embeddings ? embed_tokens_ : get("lm_head.weight");
  const AttentionShape shape{config_.num_heads, config_.num_kv_heads, config_.head_dim};
  layers_.resize(config_.num_layers);
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    const std::string p = layer_prefix(i);
    LlamaLayer& L = layers_[i];
    L.input_norm = get(p + "input_layernorm.weight");
    L.post_attention_norm = get(p + "post_attention_layernorm.weight");
    L.q_proj = get(p + "self_attn.q_proj.weight"), L.q_bias = get(p + "self_attn.q_proj.bias");
    L.k_proj = get(p + "self_attn.k_proj.weight"), L.k_bias = get(p + "self_attn.k_proj.bias");
    L.v_proj = get(p + "self_attn.v_proj.weight"), L.v_bias = get(p + "self_attn.v_proj.bias");
    L.o_proj = get(p + "self_attn.o_proj.weight"), L.o_bias = get(p + "self_attn.o_proj.bias");
    L.gate_proj = get(p + "mlp.gate_proj.weight");
    L.up_proj = get(p + "mlp.up_proj.weight");
    L.down_proj = get(p + "mlp.down_proj.weight");
    L.owned_mixer = std::make_unique<SoftmaxAttention>(shape);
    L.mixer = L.owned_mixer.get();
  }
}

LlamaModel LlamaModel::from_tensors(const ModelConfig& config, const std::map<std::string, Tensor>& tensors,
                                    const LlamaOptions& options, const std::string& where) {
  config.validate(where);
  LlamaModel m(config, options);
  m.register_parameters(&tensors, 0, where);
  m.build_attention_from_config(&tensors, where);
  return m;
}

LlamaModel LlamaModel::random(const ModelConfig& config, uint64_t seed, const LlamaOptions& options) {
  config.validate("random model config");
  LlamaModel m(config, options);
  m.register_parameters(nullptr, seed, "random init");
  m.build_attention_from_config(nullptr, "random model config");
  return m;
}

void LlamaModel::set_options(const LlamaOptions& o) {
  LINSPEC_CHECK(o.dtype == options_.dtype && o.requires_grad == options_.requires_grad,
                "set_options cannot change dtype or requires_grad after construction");
  options_ = o;
}

void LlamaModel::set_inference_weights(DType format, bool lm_head) {
  LINSPEC_CHECK(format == DType::F32 || format == DType::BF16 || format == DType::Q8,
                "inference weights must be f32, bf16 or q8, got ", dtype_name(format));
  LINSPEC_CHECK(!options_.requires_grad, "inference weights are for a model that does not train");
  LINSPEC_CHECK(options_.dtype == DType::F32, "inference weights convert an f32 model, this one is ",
                dtype_name(options_.dtype));
  // Every format decodes through a batch-invariant kernel (tree verification reproduces decoding bit for bit); for
  // f32 weights the precision selects it (bf16 and q8 weights select theirs by their dtype). bf16 GEMMs asked for
  // explicitly (eval --precision bf16) stay.
  if (options_.precision != ops::MatmulPrecision::BF16) options_.precision = ops::MatmulPrecision::F32BatchInvariant;
  if (format == inference_weights_) return;
  // From the f32 originals in the store (the layer handles alias them until converted).
  auto convert = [&](const Tensor& w) { return format == DType::Q8 ? ops::quantize_q8(w) : w.to(format); };
  auto as = [&](const std::string& name) { return convert(params_.get(name).detach()); };
  auto stacked = [&](std::initializer_list<std::string> names) {
    std::vector<Tensor> parts;
    for (const auto& n : names) parts.push_back(params_.get(n).detach());
    return convert(ops::concat(parts, 0));
  };
  for (int64_t i = 0; i < num_layers(); ++i) {
    LlamaLayer& l = layers_[i];
    const std::string p = layer_prefix(i);
    const std::string q = p + "self_attn.q_proj.weight", k = p + "self_attn.k_proj.weight",
                      v = p + "self_attn.v_proj.weight", gate = p + "mlp.gate_proj.weight", up = p + "mlp.up_proj.weight";
    // One GEMM for q, k, v (models without q/k/v biases) and one for gate, up: fewer activation conversions and
    // thread fork/joins per decoded token. The fused weights replace the separate ones, which go back to aliasing
    // the f32 store (no second copy); f32 itself is not fused (that would copy 540 MB).
    const bool fuse = format != DType::F32;
    const bool fuse_qkv = fuse && !l.q_bias.defined() && !l.k_bias.defined() && !l.v_bias.defined();
    l.qkv_proj = fuse_qkv ? stacked({q, k, v}) : Tensor();
    l.gate_up_proj = fuse ? stacked({gate, up}) : Tensor();
    auto separate = [&](const std::string& name, bool fused) { return fused ? params_.get(name) : as(name); };
    l.q_proj = separate(q, fuse_qkv), l.k_proj = separate(k, fuse_qkv), l.v_proj = separate(v, fuse_qkv);
    l.gate_proj = separate(gate, fuse), l.up_proj = separate(up, fuse);
    l.o_proj = as(p + "self_attn.o_proj.weight"), l.down_proj = as(p + "mlp.down_proj.weight");
  }
  if (lm_head) lm_head_ = as(config_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  inference_weights_ = format;
}

std::vector<std::pair<std::string, Tensor>> LlamaModel::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out = params_.entries();
  for (int64_t i = 0; i < num_layers(); ++i)
    for (auto& [name, t] : layers_[i].mixer->parameters()) out.emplace_back(layer_prefix(i) + "self_attn." + name, t);
  return out;
}

void LlamaModel::set_attention(int64_t layer, std::unique_ptr<AttentionMixer> mixer) {
  LINSPEC_CHECK(layer >= 0 && layer < num_layers(), "set_attention: layer ", layer, " of ", num_layers());
  LINSPEC_CHECK(mixer != nullptr, "set_attention: null mixer");
  const AttentionShape& s = mixer->shape();
  LINSPEC_CHECK(s.q_heads == config_.num_heads && s.kv_heads == config_.num_kv_heads &&
                    s.head_dim == config_.head_dim,
                "set_attention: mixer heads ", s.q_heads, "/", s.kv_heads, "x", s.head_dim, " do not match the model's ",
                config_.num_heads, "/", config_.num_kv_heads, "x", config_.head_dim);
  layers_[layer].owned_mixer = std::move(mixer);
  layers_[layer].mixer = layers_[layer].owned_mixer.get();
}

Tensor LlamaModel::embed(const Tensor& ids) const {
  LINSPEC_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "LlamaModel: ids must be i32 [B, T], got ",
                dtype_name(ids.dtype()), " ", shape_str(ids.shape()));
  return ops::embedding(embed_tokens_, ids.to(embed_tokens_.device()));  // a host batch moves here, once
}

Tensor LlamaModel::forward_hidden(const Tensor& ids) const {
  Tensor x = profiled("embedding", [&] { return embed(ids); });
  const bool recompute = options_.recompute && grad_enabled();
  for (int64_t i = 0; i < num_layers(); ++i) {
    if (recompute) {
      // Keeps only each layer's input; the layer is re-run during backward.
      auto block = [this, i](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{
            decoder_layer(layers_[i], config_, parallel_precision(), inv_freq_, i, in[0], LayerPass{}).y};
      };
      x = checkpoint(block, {x})[0];
    } else {
      x = decoder_layer(layers_[i], config_, parallel_precision(), inv_freq_, i, x, LayerPass{}).y;
    }
  }
  return profiled("rmsnorm", [&] { return ops::rmsnorm(x, final_norm_, config_.rms_norm_eps); });
}

ops::MatmulPrecision LlamaModel::parallel_precision() const {
  return options_.precision == ops::MatmulPrecision::F32BatchInvariant ? ops::MatmulPrecision::F32 : options_.precision;
}

Tensor LlamaModel::forward(const Tensor& ids) const {
  const Tensor hidden = forward_hidden(ids);
  return profiled("gemm.lm_head", [&] { return ops::linear(hidden, lm_head_, {}, parallel_precision()); });
}

Tensor LlamaModel::lm_head(const Tensor& hidden) const {
  return profiled("gemm.lm_head", [&] { return ops::linear(hidden, lm_head_, {}, options_.precision); });
}

Tensor LlamaModel::lm_head_frozen(const Tensor& hidden) const {
  return profiled("gemm.lm_head", [&] { return ops::linear(hidden, lm_head_.detach(), {}, options_.precision); });
}

DecodeState LlamaModel::new_decode_state(int64_t batch, int64_t max_len) const {
  DecodeState s;
  s.batch = batch;
  for (const auto& L : layers_) s.layers.push_back(L.mixer->new_state(batch, max_len, options_.dtype, options_.device));
  return s;
}

Tensor LlamaModel::decode_layers(const Tensor& ids, DecodeState& state, int64_t pos0) const {
  Tensor x = embed(ids);
  for (int64_t i = 0; i < num_layers(); ++i) {
    LayerPass pass;
    pass.pos0 = pos0;
    pass.state = state.layers[i].get();
    x = decoder_layer(layers_[i], config_, options_.precision, inv_freq_, i, x, pass).y;
  }
  return x;
}

Tensor LlamaModel::decode_hidden(DecodeState& state, const Tensor& ids, bool last_only) const {
  NoGradGuard no_grad;
  LINSPEC_CHECK(static_cast<int64_t>(state.layers.size()) == num_layers(), "decode: state has ", state.layers.size(),
                " layers, the model ", num_layers());
  LINSPEC_CHECK(ids.dim() == 2 && ids.size(0) == state.batch, "decode: ids ", shape_str(ids.shape()),
                " do not match the state's batch of ", state.batch);
  Tensor x = decode_layers(ids, state, state.position());
  if (last_only) x = x.slice(1, x.size(1) - 1, x.size(1)).contiguous();
  return ops::rmsnorm(x, final_norm_, config_.rms_norm_eps);
}

Tensor LlamaModel::decode(DecodeState& state, const Tensor& ids, bool last_only) const {
  NoGradGuard no_grad;
  return lm_head(decode_hidden(state, ids, last_only));
}

}  // namespace linspec
