// Tree verification through the whole model: every layer runs its mixer's tree form over the committed state,
// with each node rotated to its own position (committed length + depth); advance() commits an accepted path.
#include "core/autograd.h"
#include "model/llama.h"

namespace linspec {
namespace {

std::vector<int32_t> node_ids(const Tensor& ids, const char* op) {
  LINSPEC_CHECK(ids.dtype() == DType::I32 && (ids.dim() == 1 || (ids.dim() == 2 && ids.size(0) == 1)), op,
                ": ids must be i32 [N] or [1, N], got ", dtype_name(ids.dtype()), " ", shape_str(ids.shape()));
  return ids.contiguous().to_vector<int32_t>();
}

}  // namespace

DecodeState DecodeState::clone() const {
  DecodeState c;
  c.batch = batch;
  for (const auto& l : layers) c.layers.push_back(l->clone());
  c.pending_tree = pending_tree;
  return c;
}

Tensor LlamaModel::verify_tree(DecodeState& state, const Tensor& ids, const std::vector<int32_t>& parent) const {
  NoGradGuard no_grad;
  const Tensor hidden = verify_tree_hidden(state, ids, parent);
  if (hidden.size(0) == 0) return Tensor::empty({0, config_.vocab_size}, options_.dtype, hidden.device());
  return lm_head(hidden);
}

Tensor LlamaModel::verify_tree_hidden(DecodeState& state, const Tensor& ids, const std::vector<int32_t>& parent) const {
  NoGradGuard no_grad;
  const std::vector<int32_t> flat = node_ids(ids, "verify_tree");
  LINSPEC_CHECK(state.batch == 1, "verify_tree: trees are verified one sequence at a time (batch 1), the state has ",
                state.batch);
  LINSPEC_CHECK(static_cast<int64_t>(state.layers.size()) == num_layers(), "verify_tree: state has ",
                state.layers.size(), " layers, the model ", num_layers());
  if (flat.size() != parent.size())
    throw_input_error("verify_tree: ", flat.size(), " token ids for ", parent.size(), " tree nodes");
  const std::vector<int32_t> depth = tree_node_depths(parent, "verify_tree");
  const int64_t N = static_cast<int64_t>(flat.size()), P = state.position();
  if (N == 0) return Tensor::empty({0, config_.hidden_size}, options_.dtype, inv_freq_.device());

  DecodeState::PendingTree pending;
  pending.position = P;
  pending.ids = flat;
  pending.parent = parent;
  TreePass pass;
  pass.parent = &parent;
  pass.kv = &pending.kv;
  for (int32_t d : depth) pass.positions.push_back(P + d);

  const Tensor x = decode_layers(Tensor::from_vector(flat, {1, N}).to(inv_freq_.device()), state, P, &pass);
  state.pending_tree = std::move(pending);
  return ops::rmsnorm(x, final_norm_, config_.rms_norm_eps).view({N, config_.hidden_size});
}

void LlamaModel::advance(DecodeState& state, const Tensor& ids, const std::vector<int32_t>& parent,
                         const std::vector<int32_t>& accepted) const {
  NoGradGuard no_grad;
  const std::vector<int32_t> flat = node_ids(ids, "advance");
  tree_node_depths(parent, "advance");
  check_accepted_path(parent, accepted, "advance");
  if (accepted.empty()) {  // nothing accepted: the state stays as it is
    state.pending_tree = {};
    return;
  }
  const auto& p = state.pending_tree;
  const bool reusable = p.position == state.position() && p.ids == flat && p.parent == parent &&
                        static_cast<int64_t>(p.kv.size()) == num_layers();
  if (!reusable) verify_tree(state, ids, parent);  // recomputes every layer's k / v for this tree
  for (int64_t i = 0; i < num_layers(); ++i) {
    const auto& [k, v] = state.pending_tree.kv[i];
    layers_[i].mixer->advance(*state.layers[i], k, v, parent, accepted);
  }
  state.pending_tree = {};
}

}  // namespace linspec
