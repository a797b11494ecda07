// Tree verification through the whole model: every layer runs its mixer's tree form over the committed state,
// with each node rotated to its own position (committed length + depth), as one sequence of the packed pass
// (model/llama_batch.cpp); advance() commits an accepted path.
#include "core/autograd.h"
#include "model/batched_decode.h"
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
  // One sequence of the packed pass that verifies many (model/llama_batch.cpp): the same code either way.
  return verify_trees_hidden(*this, {&state}, {node_ids(ids, "verify_tree")}, {parent});
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
