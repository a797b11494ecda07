#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "model/batched_decode.h"
#include "model/op_profile.h"

namespace linspec {
namespace {

void check_states(const LlamaModel& model, const std::vector<DecodeState*>& states, const char* op) {
  LINSPEC_CHECK(std::set<DecodeState*>(states.begin(), states.end()).size() == states.size(), op,
                ": a state appears twice");
  for (const DecodeState* s : states) {
    LINSPEC_CHECK(s && s->batch == 1, op, ": every state must be a batch-1 state (one sequence each)");
    LINSPEC_CHECK(static_cast<int64_t>(s->layers.size()) == model.num_layers(), op, ": state has ",
                  s->layers.size(), " layers, the model ", model.num_layers());
  }
}

// Appends one sequence's tokens to the pass: token t at position `position` + offset[t] (null offsets: 0, 1, 2, ..,
// the tokens follow each other; a tree passes its node depths).
void pack(PackedPass& pass, std::vector<int32_t>& flat, const std::vector<int32_t>& ids, int64_t position,
          const std::vector<int32_t>* offsets = nullptr) {
  const int64_t begin = static_cast<int64_t>(flat.size());
  for (size_t t = 0; t < ids.size(); ++t) pass.positions.push_back(position + (offsets ? (*offsets)[t] : static_cast<int64_t>(t)));
  flat.insert(flat.end(), ids.begin(), ids.end());
  pass.sequences.push_back({.begin = begin, .end = static_cast<int64_t>(flat.size())});
}

// Every layer in the packed form over the tokens `ids` of `pass.sequences` (whose states are states[j]'s layers),
// then the final norm: hidden [N, D].
Tensor packed_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states, const std::vector<int32_t>& ids,
                     PackedPass& pass) {
  const ModelConfig& c = model.config();
  const int64_t N = static_cast<int64_t>(ids.size());
  const Tensor& table = model.parameters().get("model.embed_tokens.weight");
  Tensor x = profiled("embedding", [&] {
    return ops::embedding(table, Tensor::from_vector(ids, {1, N}).to(table.device()));  // [1, N, D]
  });
  pass.rope = profiled("rope", [&] {
    return ops::rope_rows_at_positions(pass.positions, model.rope_inv_freq(), x.dtype());
  });
  for (int64_t i = 0; i < model.num_layers(); ++i) {
    for (size_t j = 0; j < pass.sequences.size(); ++j) pass.sequences[j].state = states[j]->layers[i].get();
    LayerPass lp;
    lp.packed = &pass;
    x = decoder_layer(model.layer(i), c, model.options().precision, model.rope_inv_freq(), i, x, lp).y;
  }
  return profiled("rmsnorm", [&] {
    return ops::rmsnorm(x, model.parameters().get("model.norm.weight"), c.rms_norm_eps).view({N, c.hidden_size});
  });
}

}  // namespace

Tensor decode_batched_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states,
                             const std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(states.size());
  LINSPEC_CHECK(B >= 1 && static_cast<int64_t>(ids.size()) == B, "decode_batched: ", B, " states for ", ids.size(),
                " ids");
  check_states(model, states, "decode_batched");
  PackedPass pass;
  std::vector<int32_t> flat;
  for (int64_t b = 0; b < B; ++b) pack(pass, flat, {ids[b]}, states[b]->position());
  return packed_hidden(model, states, flat, pass);  // [B, D]
}

Tensor decode_batched(const LlamaModel& model, const std::vector<DecodeState*>& states,
                      const std::vector<int32_t>& ids) {
  NoGradGuard no_grad;
  return model.lm_head(decode_batched_hidden(model, states, ids));  // [B, V]
}

Tensor prefill_batched_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states,
                              const std::vector<std::vector<int32_t>>& prompts) {
  NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(states.size());
  LINSPEC_CHECK(B >= 1 && static_cast<int64_t>(prompts.size()) == B, "prefill_batched: ", B, " states for ",
                prompts.size(), " prompts");
  check_states(model, states, "prefill_batched");
  PackedPass pass;
  std::vector<int32_t> flat;
  for (int64_t b = 0; b < B; ++b) {
    LINSPEC_CHECK(!prompts[b].empty(), "prefill_batched: prompt ", b, " is empty");
    pack(pass, flat, prompts[b], states[b]->position());
  }
  return packed_hidden(model, states, flat, pass);  // [N, D]
}

Tensor prefill_batched(const LlamaModel& model, const std::vector<DecodeState*>& states,
                       const std::vector<std::vector<int32_t>>& prompts) {
  NoGradGuard no_grad;
  const Tensor hidden = prefill_batched_hidden(model, states, prompts);
  std::vector<Tensor> rows;
  int64_t end = 0;  // each prompt's last row
  for (const auto& p : prompts) {
    end += static_cast<int64_t>(p.size());
    rows.push_back(hidden.slice(0, end - 1, end));
  }
  return model.lm_head(rows.size() == 1 ? rows[0].contiguous() : ops::concat(rows, 0));  // [B, V]
}

Tensor verify_trees_hidden(const LlamaModel& model, const std::vector<DecodeState*>& states,
                           const std::vector<std::vector<int32_t>>& ids,
                           const std::vector<std::vector<int32_t>>& parents) {
  NoGradGuard no_grad;
  LINSPEC_CHECK(ids.size() == states.size() && parents.size() == states.size(), "verify_tree: ", states.size(),
                " states for ", ids.size(), " trees of ids and ", parents.size(), " of parents");
  check_states(model, states, "verify_tree");
  PackedPass pass;
  std::vector<DecodeState*> members;  // the sequences with nodes, in pass.sequences' order
  std::vector<DecodeState::PendingTree> pending;
  std::vector<int32_t> flat;
  for (size_t b = 0; b < states.size(); ++b) {
    if (ids[b].size() != parents[b].size())
      throw_input_error("verify_tree: ", ids[b].size(), " token ids for ", parents[b].size(), " tree nodes");
    const std::vector<int32_t> depth = tree_node_depths(parents[b], "verify_tree");
    if (ids[b].empty()) continue;
    const int64_t P = states[b]->position();
    pack(pass, flat, ids[b], P, &depth);
    members.push_back(states[b]);
    pending.push_back({.position = P, .ids = ids[b], .parent = parents[b], .kv = {}});
  }
  const int64_t D = model.config().hidden_size;
  if (flat.empty()) return Tensor::empty({0, D}, model.options().dtype, model.rope_inv_freq().device());
  // The parent pointers and k / v sinks point into `pending`, which no longer grows.
  for (size_t j = 0; j < members.size(); ++j) {
    pass.sequences[j].parent = &pending[j].parent;
    pass.sequences[j].kv = &pending[j].kv;
  }
  const Tensor hidden = packed_hidden(model, members, flat, pass);
  for (size_t j = 0; j < members.size(); ++j) members[j]->pending_tree = std::move(pending[j]);
  return hidden;
}

}  // namespace linspec
