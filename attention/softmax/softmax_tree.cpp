// Tree verification shared by every mixer: parent-array checks, the default (unsupported) tree form, and the
// softmax tree: a KV cache plus a tree mask (node i sees every committed key and its own ancestors), on the
// model's device through ops::tree_attention.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/error.h"
#include "attention/mixer.h"
#include "core/tensor_rows.h"

namespace linspec {

std::vector<int32_t> tree_node_depths(const std::vector<int32_t>& parent, const std::string& where) {
  std::vector<int32_t> depth(parent.size());
  for (size_t i = 0; i < parent.size(); ++i) {
    if (parent[i] < -1 || parent[i] >= static_cast<int32_t>(i))
      throw_input_error(where, ": parent[", i, "] = ", parent[i], " must be -1 (a root) or an earlier node");
    depth[i] = parent[i] < 0 ? 0 : depth[parent[i]] + 1;
  }
  return depth;
}

void check_accepted_path(const std::vector<int32_t>& parent, const std::vector<int32_t>& accepted,
                         const std::string& where) {
  for (size_t i = 0; i < accepted.size(); ++i) {
    const int32_t node = accepted[i];
    if (node < 0 || node >= static_cast<int32_t>(parent.size()))
      throw_input_error(where, ": node ", node, " is not in the tree of ", parent.size(), " nodes");
    const int32_t expected = i == 0 ? -1 : accepted[i - 1];
    if (parent[node] != expected)
      throw_input_error(where, ": node ", node, " has parent ", parent[node], ", the path needs ", expected,
                        " (accepted nodes must form a root-first chain)");
  }
}

Tensor AttentionMixer::tree(const AttentionState&, const Tensor&, const Tensor&, const Tensor&,
                            const std::vector<int32_t>&) const {
  throw_input_error("attention '", kind(), "' has no tree verification form");
}

void AttentionMixer::advance(AttentionState&, const Tensor&, const Tensor&, const std::vector<int32_t>&,
                             const std::vector<int32_t>&) const {
  throw_input_error("attention '", kind(), "' has no tree verification form");
}

namespace {

const KVCache& as_cache(const AttentionState& s) {
  const auto* c = dynamic_cast<const KVCache*>(&s);
  LINSPEC_CHECK(c != nullptr, "softmax attention used with a state that is not a KV cache");
  return *c;
}

}  // namespace

Tensor SoftmaxAttention::tree(const AttentionState& state, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                              const std::vector<int32_t>& parent) const {
  const KVCache& cache = as_cache(state);
  tree_node_depths(parent, "softmax tree");  // refuses a malformed parent array with an input error
  LINSPEC_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && k_in.shape() == v_in.shape() && q_in.size(2) == k_in.size(2) &&
                    q_in.size(2) == static_cast<int64_t>(parent.size()) && q_in.size(1) == shape_.q_heads &&
                    k_in.size(1) == shape_.kv_heads,
                "softmax tree: q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), " for ", parent.size(),
                " nodes");
  const DType dt = cache.keys().dtype();
  return ops::tree_attention(q_in.to(dt), cache.keys(), cache.values(), k_in.to(dt), v_in.to(dt), parent);
}

void SoftmaxAttention::advance(AttentionState& state, const Tensor& k, const Tensor& v,
                               const std::vector<int32_t>& parent, const std::vector<int32_t>& accepted) const {
  auto* cache = dynamic_cast<KVCache*>(&state);
  LINSPEC_CHECK(cache != nullptr, "softmax attention advanced with a state that is not a KV cache");
  LINSPEC_CHECK(k.dim() == 4 && k.shape() == v.shape() && k.size(2) == static_cast<int64_t>(parent.size()),
                "softmax advance: k / v must be [B, Hkv, N, d] for ", parent.size(), " nodes, got ",
                shape_str(k.shape()));
  check_accepted_path(parent, accepted, "softmax advance");
  if (accepted.empty()) return;
  cache->append(gather_rows(k, accepted), gather_rows(v, accepted));
}

}  // namespace linspec
