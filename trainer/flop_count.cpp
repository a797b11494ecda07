#include "trainer/flop_count.h"

#include <set>

#include "attention/linear_mixers.h"

namespace linspec::trainer {
namespace {

using D = double;

// y = x Wᵀ on N rows (+ a rank-r LoRA adapter when r > 0: (x Aᵀ) Bᵀ). x_rg: x requires grad; w_trains: W is a
// trainable leaf; reached: a loss is downstream of y (else backward never runs its closure).
void add_linear(FamilyFlops& f, D N, D in, D out, bool x_rg, bool w_trains, D r, bool reached) {
  f.gemm_forward += 2 * N * in * out;
  if (r > 0) f.gemm_forward += 2 * N * in * r + 2 * N * r * out;
  if (!reached) return;
  if (x_rg) f.gemm_backward += 2 * N * in * out;  // dX
  if (w_trains) f.gemm_backward += 2 * N * in * out;  // dW
  if (r > 0) {
    f.gemm_backward += 2 * N * out * r + 2 * N * r * out + 2 * N * in * r;  // d(xAᵀ), dB, dA
    if (x_rg) f.gemm_backward += 2 * N * r * in;                         // dX through A
  }
}

// Taps of the causal conv on V (aug family, `+conv` presets): la.conv_w [Hq, C]; 0 without one.
int64_t conv_taps(const AttentionMixer& m) {
  for (const auto& [name, t] : m.persistent_tensors())
    if (name == "la.conv_w" && t.dim() == 2) return t.size(1);
  return 0;
}

}  // namespace

double StepFlops::total() const {
  double s = 0;
  for (const auto& [name, f] : families) s += f.total();
  return s;
}

double StepFlops::gemm_total() const {
  double s = 0;
  for (const auto& [name, f] : families) s += f.gemm_forward + f.gemm_backward;
  return s;
}

double attention_forward_flops(const AttentionMixer& m, int64_t batch, int64_t seq) {
  const AttentionShape& s = m.shape();
  const D B = static_cast<D>(batch), T = static_cast<D>(seq), Hq = static_cast<D>(s.q_heads),
          Hkv = static_cast<D>(s.kv_heads), d = static_cast<D>(s.head_dim);
  // Causal softmax: q·k and p·v over T(T+1)/2 pairs per head.
  if (m.kind() == "softmax") return 2 * B * Hq * d * T * (T + 1);
  D flops = 2 * B * Hq * T * static_cast<D>(conv_taps(m)) * d;  // conv on V
  if (const auto* aug = dynamic_cast<const AugMixer*>(&m)) {
    const AugConfig& c = aug->config();
    const D G = static_cast<D>(c.group_size);
    if (c.use_local) flops += 2 * B * Hq * d * T * (G + 1);  // q·k and relu²·v over the causal pairs of each group
    if (c.use_global) flops += 2 * B * Hkv * T * d * d + 2 * B * Hq * T * d * d;  // kᵀv state, q·state readout
    return flops;
  }
  const AttentionMixer* base = &m;
  if (const auto* conv = dynamic_cast<const ConvMixer*>(&m)) base = &conv->base();
  if (const auto* bl = dynamic_cast<const BaselineMixer*>(base)) {
    const D f = bl->config().preset == BaselinePreset::Performer ? static_cast<D>(bl->config().features) : d;
    flops += 2 * B * Hkv * T * f * d + 2 * B * Hq * T * f * d;  // kernel-form state and readout
    if (bl->config().preset == BaselinePreset::Window)
      flops += 2 * B * Hq * d * T * (static_cast<D>(bl->config().window) + 1);
  }
  return flops;
}

StepFlops count_step_flops(const TrainSetup& setup, int64_t batch, int64_t seq) {
  const Student& student = *setup.student;
  const LlamaModel& model = student.base();
  const ModelConfig& c = model.config();
  const ObjectiveWeights& w = setup.objectives;
  const DraftHeads* heads = setup.drafts.heads.get();
  const bool draft = setup.drafts.model != nullptr, on_policy = setup.drafts.settings.on_policy;
  const bool heads_self = heads && setup.drafts.settings.heads.target == "self";

  StepFlops out;
  out.tokens = batch * seq;
  const D N = static_cast<D>(out.tokens), Dm = static_cast<D>(c.hidden_size), I = static_cast<D>(c.intermediate_size),
          V = static_cast<D>(c.vocab_size), Dq = static_cast<D>(c.num_heads * c.head_dim),
          Dkv = static_cast<D>(c.num_kv_heads * c.head_dim);
  std::set<std::string> trains;
  for (const auto& [name, t] : student.trainable_parameters()) trains.insert(name);
  // Objectives::compute runs the student without a tape when only drafts train.
  const bool grad_on = !trains.empty();
  auto tr = [&](const std::string& n) { return grad_on && trains.count(n) > 0; };
  auto rank = [&](int64_t layer, LoraTarget t) -> D {
    const LoraAdapter* a = setup.lora ? setup.lora->find(layer, t) : nullptr;
    return grad_on && a ? static_cast<D>(a->A().size(0)) : 0;
  };
  auto layer_trains = [&](int64_t i, const char* suffix) { return tr("model.layers." + std::to_string(i) + "." + suffix); };

  // Which losses read what: the logits (ce, kd with a gradient; heads' self target and the draft model's only as a
  // constant), the final hidden state (heads), per-layer mixer outputs (attention transfer, linear layers only).
  const bool logits_used = w.ce > 0 || w.kd > 0 || heads_self || (draft && !on_policy);
  const bool logits_loss = w.ce > 0 || w.kd > 0;
  const int64_t L = c.num_layers;
  std::vector<bool> at_term(L, false);
  for (int64_t i = 0; i < L; ++i) at_term[i] = w.attention_transfer > 0 && model.layer(i).mixer->kind() != "softmax";

  // Forward pass: which activations require grad.
  const std::string embed = "model.embed_tokens.weight";
  const bool head_trains = c.tie_word_embeddings ? tr(embed) : tr("lm_head.weight");
  struct LayerFlags {
    bool x, h, q, k, v, o, ao, x1, h2, gate, up, act;
    bool qkv_w[3], o_w, gate_w, up_w, down_w;
  };
  std::vector<LayerFlags> f(L);
  bool x = tr(embed);
  for (int64_t i = 0; i < L; ++i) {
    LayerFlags& l = f[i];
    l.x = x;
    l.h = x || layer_trains(i, "input_layernorm.weight");
    const char* names[3] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
    bool qkv[3];
    for (int j = 0; j < 3; ++j) {
      l.qkv_w[j] = layer_trains(i, (std::string(names[j]) + "weight").c_str());
      qkv[j] = l.h || l.qkv_w[j] || layer_trains(i, (std::string(names[j]) + "bias").c_str()) ||
               rank(i, static_cast<LoraTarget>(j)) > 0;
    }
    l.q = qkv[0], l.k = qkv[1], l.v = qkv[2];
    bool mixer_rg = false;
    for (const auto& [name, t] : model.layer(i).mixer->parameters()) mixer_rg = mixer_rg || (grad_on && t.requires_grad());
    l.o = l.q || l.k || l.v || mixer_rg;
    l.o_w = layer_trains(i, "self_attn.o_proj.weight");
    l.ao = l.o || l.o_w || layer_trains(i, "self_attn.o_proj.bias") || rank(i, LoraTarget::O) > 0;
    l.x1 = x || l.ao;
    l.h2 = l.x1 || layer_trains(i, "post_attention_layernorm.weight");
    l.gate_w = layer_trains(i, "mlp.gate_proj.weight"), l.up_w = layer_trains(i, "mlp.up_proj.weight");
    l.down_w = layer_trains(i, "mlp.down_proj.weight");
    l.gate = l.h2 || l.gate_w || rank(i, LoraTarget::Gate) > 0;
    l.up = l.h2 || l.up_w || rank(i, LoraTarget::Up) > 0;
    l.act = l.gate || l.up;
    x = l.x1 || l.act || l.down_w || rank(i, LoraTarget::Down) > 0;
  }
  const bool hidden_rg = x || tr("model.norm.weight");

  // Backward reach: a gradient reaches the final hidden state when a loss with a gradient reads it.
  bool reached = hidden_rg && ((logits_loss && logits_used) || heads);
  FamilyFlops &qkv = out.families["gemm.qkv"], &o = out.families["gemm.o"], &mlp = out.families["gemm.mlp"],
              &attn = out.families["attention"];
  for (int64_t i = L - 1; i >= 0; --i) {
    const LayerFlags& l = f[i];
    const bool out_reached = reached;  // the layer's output (x + mlp)
    add_linear(mlp, N, I, Dm, l.act, l.down_w, rank(i, LoraTarget::Down), out_reached);
    add_linear(mlp, N, Dm, I, l.h2, l.gate_w, rank(i, LoraTarget::Gate), out_reached);
    add_linear(mlp, N, Dm, I, l.h2, l.up_w, rank(i, LoraTarget::Up), out_reached);
    add_linear(o, N, Dq, Dm, l.o, l.o_w, rank(i, LoraTarget::O), out_reached);
    const bool o_reached = out_reached || at_term[i];
    const AttentionMixer& mixer = *model.layer(i).mixer;
    const D a = attention_forward_flops(mixer, batch, seq);
    attn.other_forward += a;
    if (o_reached && l.o) attn.other_backward += 2 * a;  // dq, dk, dv: about twice the forward's products
    if (at_term[i]) out.families["attention_transfer"].other_forward += attention_forward_flops(
                        SoftmaxAttention(mixer.shape()), batch, seq);  // the softmax target, no gradient
    const D outs[3] = {Dq, Dkv, Dkv};
    for (int j = 0; j < 3; ++j)
      add_linear(qkv, N, Dm, outs[j], l.h, l.qkv_w[j], rank(i, static_cast<LoraTarget>(j)), o_reached);
    // The layer's input gets a gradient through the residual or through q, k, v.
    reached = l.x && (out_reached || o_reached);
  }

  if (logits_used)
    add_linear(out.families["gemm.lm_head"], N, Dm, V, hidden_rg, head_trains, 0, logits_loss && (hidden_rg || head_trains));

  if (w.kd > 0 && setup.teacher) {
    // Forward only: every projection, the teacher's attention and its LM head.
    const ModelConfig& tc = setup.teacher->config();
    FamilyFlops& t = out.families["teacher"];
    const D tD = static_cast<D>(tc.hidden_size), tI = static_cast<D>(tc.intermediate_size),
            tq = static_cast<D>(tc.num_heads * tc.head_dim), tkv = static_cast<D>(tc.num_kv_heads * tc.head_dim);
    for (int64_t i = 0; i < tc.num_layers; ++i) {
      t.gemm_forward += 2 * N * tD * (tq + 2 * tkv) + 2 * N * tq * tD + 2 * N * tD * 3 * tI;
      t.other_forward += attention_forward_flops(*setup.teacher->layer(i).mixer, batch, seq);
    }
    t.gemm_forward += 2 * N * tD * static_cast<D>(tc.vocab_size);
  }

  if (heads) {
    // Head k reads h_t for t < T - k: `blocks` residual D×D blocks, then its projection (the frozen LM head when
    // shared, else its own trainable copy). Every head tensor trains.
    FamilyFlops& h = out.families["draft_heads"];
    const DraftHeadsConfig& hc = heads->config();
    for (int64_t k = 1; k <= hc.count && k < seq; ++k) {
      const D rows = static_cast<D>(batch * (seq - k));
      for (int64_t b = 0; b < hc.blocks; ++b) add_linear(h, rows, Dm, Dm, b > 0 || hidden_rg, true, 0, true);
      add_linear(h, rows, Dm, V, hc.blocks > 0 || hidden_rg, !hc.shared_projection, 0, true);
    }
  }
  if (draft) out.not_counted.push_back("draft_model");
  for (auto it = out.families.begin(); it != out.families.end();)
    it = it->second.total() == 0 ? out.families.erase(it) : std::next(it);
  return out;
}

}  // namespace linspec::trainer
