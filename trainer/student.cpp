#include "trainer/student.h"

#include "core/autograd.h"
#include "core/error.h"
#include "model/op_profile.h"

namespace linspec::trainer {
namespace {

std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

}  // namespace

Tensor Student::handle(const std::string& name, const Tensor& t, const std::set<std::string>& trainable) {
  if (!t.defined()) return t;
  Tensor h = t.detach();  // same storage, own autograd state
  if (trainable.count(name)) {
    h.set_requires_grad(true);
    trainable_.emplace_back(name, h);
  }
  return h;
}

Student::Student(const LlamaModel& base, const LoraSet* lora, const std::set<std::string>& trainable,
                 const StudentOptions& options)
    : base_(base), options_(options) {
  const ModelConfig& c = base.config();
  const ParameterStore& store = base.parameters();
  auto get = [&](const std::string& n) { return store.contains(n) ? store.get(n) : Tensor(); };
  std::set<std::string> known;
  for (const auto& [name, t] : base.named_parameters()) known.insert(name);
  for (const auto& name : trainable)
    LINSPEC_CHECK(known.count(name), "Student: no parameter named ", name, " to train");

  embed_ = handle("model.embed_tokens.weight", get("model.embed_tokens.weight"), trainable);
  layers_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = layer_prefix(i);
    DecoderLayerWeights& L = layers_[i];
    auto h = [&](const std::string& suffix) { return handle(p + suffix, get(p + suffix), trainable); };
    L.input_norm = h("input_layernorm.weight");
    L.q_proj = h("self_attn.q_proj.weight"), L.q_bias = h("self_attn.q_proj.bias");
    L.k_proj = h("self_attn.k_proj.weight"), L.k_bias = h("self_attn.k_proj.bias");
    L.v_proj = h("self_attn.v_proj.weight"), L.v_bias = h("self_attn.v_proj.bias");
    L.o_proj = h("self_attn.o_proj.weight"), L.o_bias = h("self_attn.o_proj.bias");
    L.post_attention_norm = h("post_attention_layernorm.weight");
    L.gate_proj = h("mlp.gate_proj.weight"), L.up_proj = h("mlp.up_proj.weight");
    L.down_proj = h("mlp.down_proj.weight");
    L.mixer = base.layer(i).mixer;
    for (auto& [name, t] : L.mixer->parameters()) {
      const std::string full = p + "self_attn." + name;
      if (trainable.count(full)) {
        if (!t.requires_grad())
          throw_input_error("trainable: the ", L.mixer->kind(), " parameter ", full, " is fixed by its preset");
        trainable_.emplace_back(full, t);
      } else if (t.requires_grad()) {
        frozen_mixer_params_.push_back(t);
      }
    }
    if (lora) {
      for (int t = 0; t < kLoraTargetCount; ++t) {
        L.lora[t] = lora->find(i, static_cast<LoraTarget>(t));
        if (!L.lora[t]) continue;
        const std::string base_name = lora_projection_name(i, static_cast<LoraTarget>(t));
        trainable_.emplace_back(base_name + ".lora_A", L.lora[t]->A());
        trainable_.emplace_back(base_name + ".lora_B", L.lora[t]->B());
      }
    }
  }
  final_norm_ = handle("model.norm.weight", get("model.norm.weight"), trainable);
  head_ = c.tie_word_embeddings ? embed_ : handle("lm_head.weight", get("lm_head.weight"), trainable);
}

void Student::drop_frozen_mixer_grads() const {
  for (const Tensor& t : frozen_mixer_params_) const_cast<Tensor&>(t).zero_grad();
}

int64_t Student::parameter_stage(const std::string& name) const {
  const int64_t L = base_.num_layers();
  if (name == "model.embed_tokens.weight") return -1;
  if (name == "lm_head.weight") return base_.config().tie_word_embeddings ? -1 : L;
  if (name == "model.norm.weight") return L;
  const std::string p = "model.layers.";
  LINSPEC_CHECK(name.rfind(p, 0) == 0, "parameter_stage: unexpected name ", name);
  return std::stoll(name.substr(p.size()));
}

std::vector<int64_t> Student::trainable_stages() const {
  std::vector<int64_t> out;
  for (const auto& [name, t] : trainable_) out.push_back(parameter_stage(name));
  return out;
}

LayerOutput Student::layer(int64_t i, const Tensor& x, const LoraContext& ctx, const MixerTap* tap) const {
  LayerPass pass;
  pass.lora = &ctx;
  pass.tap = tap;
  return decoder_layer(layers_[i], base_.config(), options_.precision, base_.rope_inv_freq(), i, x, pass);
}

StudentOutput Student::forward_hidden(const Tensor& ids, const LoraContext& ctx, const MixerTap* tap,
                                      const StageDone* stage_done) const {
  LINSPEC_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32, "Student: ids must be i32 [B, T], got ",
                dtype_name(ids.dtype()), " ", shape_str(ids.shape()));
  const bool taped = grad_enabled();
  // A marker recorded just before a stage's first use runs, in the reversed tape, after all of its uses.
  auto mark = [&](int64_t stage) {
    if (taped && stage_done) current_tape().record([fn = *stage_done, stage] { fn(stage); });
  };
  StudentOutput out;
  mark(-1);
  Tensor x = profiled("embedding", [&] { return ops::embedding(embed_, ids.to(embed_.device())); });
  const bool recompute = options_.recompute && taped;
  for (int64_t i = 0; i < base_.num_layers(); ++i) {
    mark(i);
    if (recompute) {
      // Keeps only the layer's input; the layer (and the tap's term) is re-run during backward.
      // The block lives on the tape until backward: it owns a copy of the tap.
      auto block = [this, i, ctx, tap_copy = tap ? *tap : MixerTap()](const std::vector<Tensor>& in) {
        LayerOutput r = layer(i, in[0], ctx, tap_copy ? &tap_copy : nullptr);
        return r.term.defined() ? std::vector<Tensor>{r.y, r.term} : std::vector<Tensor>{r.y};
      };
      std::vector<Tensor> res = checkpoint(block, {x});
      x = res[0];
      out.layer_terms.push_back(res.size() > 1 ? res[1] : Tensor());
    } else {
      LayerOutput r = layer(i, x, ctx, tap);
      x = r.y;
      out.layer_terms.push_back(r.term);
    }
  }
  mark(base_.num_layers());
  out.hidden = profiled("rmsnorm", [&] { return ops::rmsnorm(x, final_norm_, base_.config().rms_norm_eps); });
  return out;
}

Tensor Student::lm_head(const Tensor& hidden) const {
  return profiled("gemm.lm_head", [&] { return ops::linear(hidden, head_, {}, options_.precision); });
}

Tensor Student::lm_head_cross_entropy(const Tensor& hidden, const Tensor& targets) const {
  return profiled("gemm.lm_head", [&] {
    // 512 rows: the weight-gradient GEMM (K = rows) runs ~5% faster than at 256, and the chunk's single [rows, V]
    // buffer (gradient in place) holds as much as 256 rows with a separate gradient did (bench/results/train/).
    return ops::linear_cross_entropy(hidden, head_, targets, /*chunk=*/512, options_.precision);
  });
}

}  // namespace linspec::trainer
