#include "serve/hidden_states.h"

#include "core/autograd.h"
#include "model/tree_rope.h"

namespace linspec {
namespace {

struct TreeInfo {
  const std::vector<int32_t>* parent;
  std::vector<int64_t> positions;
  std::vector<std::pair<Tensor, Tensor>>* kv;
};

// One decoder layer in the same op sequence as LlamaModel::layer_forward (incremental or tree form).
Tensor layer(const LlamaModel& m, int64_t i, const Tensor& x, int64_t pos0, AttentionState& state,
             const TreeInfo* tree, const std::vector<float>& inv_freq) {
  const LlamaLayer& L = m.layer(i);
  const ModelConfig& c = m.config();
  const auto prec = m.options().precision;
  const int64_t B = x.size(0), T = x.size(1), d = c.head_dim;
  const Tensor h = ops::rmsnorm(x, L.input_norm, c.rms_norm_eps);
  auto heads = [&](const Tensor& w, const Tensor& b, int64_t n) {
    return ops::transpose(ops::reshape(ops::linear(h, w, b, prec), {B, T, n, d}), 1, 2);
  };
  auto rotate = [&](const Tensor& y) {
    return tree ? rope_at_positions(y, c.rope_theta, tree->positions, inv_freq)
                : ops::rope(y, c.rope_theta, pos0, inv_freq);
  };
  const Tensor q = rotate(heads(L.q_proj, L.q_bias, c.num_heads));
  const Tensor k = rotate(heads(L.k_proj, L.k_bias, c.num_kv_heads));
  const Tensor v = heads(L.v_proj, L.v_bias, c.num_kv_heads);
  Tensor o;
  if (tree) {
    tree->kv->emplace_back(k, v);
    o = L.mixer->tree(state, q, k, v, *tree->parent);
  } else {
    o = L.mixer->step(state, q, k, v);
  }
  const Tensor merged = ops::reshape(ops::transpose(o, 1, 2), {B, T, c.num_heads * d});
  const Tensor x1 = ops::add(x, ops::linear(merged, L.o_proj, L.o_bias, prec));
  const Tensor h2 = ops::rmsnorm(x1, L.post_attention_norm, c.rms_norm_eps);
  const Tensor act = ops::swiglu(ops::linear(h2, L.gate_proj, {}, prec), ops::linear(h2, L.up_proj, {}, prec));
  return ops::add(x1, ops::linear(act, L.down_proj, {}, prec));
}

Tensor embed(const LlamaModel& m, const Tensor& ids) {
  return ops::embedding(m.parameters().get("model.embed_tokens.weight"), ids);
}
Tensor final_norm(const LlamaModel& m, const Tensor& x) {
  return ops::rmsnorm(x, m.parameters().get("model.norm.weight"), m.config().rms_norm_eps);
}

}  // namespace

Tensor decode_hidden(const LlamaModel& model, DecodeState& state, const Tensor& ids, bool last_only) {
  NoGradGuard no_grad;
  LINSPEC_CHECK(static_cast<int64_t>(state.layers.size()) == model.num_layers(), "decode_hidden: state has ",
                state.layers.size(), " layers, the model ", model.num_layers());
  LINSPEC_CHECK(ids.dim() == 2 && ids.dtype() == DType::I32 && ids.size(0) == state.batch, "decode_hidden: ids ",
                shape_str(ids.shape()), " for a state of batch ", state.batch);
  const std::vector<float> inv_freq = rope_inv_freq(model.config());
  const int64_t pos0 = state.position();
  Tensor x = embed(model, ids);
  for (int64_t i = 0; i < model.num_layers(); ++i) x = layer(model, i, x, pos0, *state.layers[i], nullptr, inv_freq);
  if (last_only) x = x.slice(1, x.size(1) - 1, x.size(1)).contiguous();
  return final_norm(model, x);
}

Tensor verify_tree_hidden(const LlamaModel& model, DecodeState& state, const std::vector<int32_t>& ids,
                          const std::vector<int32_t>& parent) {
  NoGradGuard no_grad;
  LINSPEC_CHECK(state.batch == 1, "verify_tree_hidden: batch 1 only, the state has ", state.batch);
  LINSPEC_CHECK(ids.size() == parent.size() && !ids.empty(), "verify_tree_hidden: ", ids.size(), " ids for ",
                parent.size(), " nodes");
  const std::vector<int32_t> depth = tree_node_depths(parent, "verify_tree_hidden");
  const int64_t N = static_cast<int64_t>(ids.size()), P = state.position();
  DecodeState::PendingTree pending;
  pending.position = P;
  pending.ids = ids;
  pending.parent = parent;
  TreeInfo tree{&parent, {}, &pending.kv};
  for (int32_t d : depth) tree.positions.push_back(P + d);
  const std::vector<float> inv_freq = rope_inv_freq(model.config());
  Tensor x = embed(model, Tensor::from_vector(ids, {1, N}));
  for (int64_t i = 0; i < model.num_layers(); ++i) x = layer(model, i, x, P, *state.layers[i], &tree, inv_freq);
  state.pending_tree = std::move(pending);
  return final_norm(model, x).view({N, model.config().hidden_size});
}

}  // namespace linspec
