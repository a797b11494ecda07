#include "serve/verify_forms.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "core/autograd.h"
#include "core/rng.h"
#include "attention/linear_mixers.h"

namespace linspec {
namespace {

using nlohmann::json;

// max over rows of max|a − b| / max|b|, for logits [..., V] of equal shape.
double row_rel_err(const Tensor& a, const Tensor& b) {
  LINSPEC_CHECK(a.shape() == b.shape(), "row_rel_err: ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  const size_t V = static_cast<size_t>(a.size(-1));
  double worst = 0;
  for (size_t r = 0; r < x.size() / V; ++r) {
    double diff = 0, scale = 0;
    for (size_t i = r * V; i < (r + 1) * V; ++i) {
      diff = std::max(diff, std::abs(x[i] - y[i]));
      scale = std::max(scale, std::abs(y[i]));
    }
    const double e = diff / std::max(scale, 1e-30);
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())});
}

Tensor row(const Tensor& logits3, int64_t t) {  // [1, T, V] -> [1, V]
  return logits3.select(1, t).contiguous();
}

// The option `key` of the model's attention spec, or `fallback`.
int64_t spec_int(const AttentionSpec& s, const std::string& key, int64_t fallback) {
  auto it = s.options.find(key);
  return it == s.options.end() ? fallback : std::stoll(it->second);
}

// A branching tree: a main chain of `depth` nodes first (0 → 1 → …), then nodes hung under random earlier nodes
// (or the root position) whose path stays within `depth` tokens.
std::vector<int32_t> random_tree(int64_t nodes, int64_t depth, Philox& rng) {
  std::vector<int32_t> parent, d;
  for (int64_t i = 0; i < std::min(nodes, depth); ++i) {
    parent.push_back(static_cast<int32_t>(i) - 1);
    d.push_back(static_cast<int32_t>(i));
  }
  while (static_cast<int64_t>(parent.size()) < nodes) {
    std::vector<int32_t> options{-1};
    for (int32_t j = 0; j < static_cast<int32_t>(parent.size()); ++j)
      if (d[j] + 1 < depth) options.push_back(j);
    const int32_t p = options[rng.below(options.size())];
    parent.push_back(p);
    d.push_back(p < 0 ? 0 : d[p] + 1);
  }
  return parent;
}

// The main chain: node 0, then repeatedly the lowest-numbered child.
std::vector<int32_t> main_chain(const std::vector<int32_t>& parent) {
  std::vector<int32_t> chain;
  if (parent.empty() || parent[0] != -1) return chain;
  chain.push_back(0);
  for (bool grown = true; grown;) {
    grown = false;
    for (int32_t i = chain.back() + 1; i < static_cast<int32_t>(parent.size()); ++i)
      if (parent[i] == chain.back()) {
        chain.push_back(i);
        grown = true;
        break;
      }
  }
  return chain;
}

struct TreeResult {
  double vs_sequential = 0, vs_parallel = 0, advance = 0;
  int64_t nodes = 0, max_depth = 0, accepted = 0;
};

TreeResult check_tree_at(const LlamaModel& m, const std::vector<int32_t>& ids, const Tensor& parallel, int64_t P,
                         const FormCheckOptions& o, Philox& rng) {
  const int64_t len = static_cast<int64_t>(ids.size()), V = m.config().vocab_size;
  const std::vector<int32_t> parent = o.tree_parent.empty() ? random_tree(o.tree_nodes, o.tree_depth, rng) : o.tree_parent;
  const std::vector<int32_t> depth = tree_node_depths(parent, "tree");
  const std::vector<int32_t> chain = main_chain(parent);
  // Tokens: the main chain follows the sequence (so its logits are the parallel rows), the rest are random.
  std::vector<int32_t> tokens(parent.size());
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  for (int32_t j : chain)
    if (P + depth[j] < len) tokens[j] = ids[P + depth[j]];
  const int64_t N = static_cast<int64_t>(parent.size());

  DecodeState state = m.new_decode_state(1, len + o.tree_depth + o.continue_tokens + 8);
  if (P > 0) m.decode(state, ids_tensor(std::vector<int32_t>(ids.begin(), ids.begin() + P)));
  const Tensor tree_ids = Tensor::from_vector(tokens, {N});
  const Tensor tree = m.verify_tree(state, tree_ids, parent);

  TreeResult r;
  r.nodes = N;
  r.max_depth = N ? *std::max_element(depth.begin(), depth.end()) + 1 : 0;
  // Sequential reference: each node decoded on a copy of its parent's state (parents precede children).
  std::vector<DecodeState> after(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    after[i] = parent[i] < 0 ? state.clone() : after[parent[i]].clone();
    const Tensor seq = m.decode(after[i], ids_tensor({tokens[i]}));
    r.vs_sequential = std::max(r.vs_sequential, row_rel_err(tree.slice(0, i, i + 1).contiguous(), seq.view({1, V})));
  }
  after.clear();
  std::vector<int32_t> accepted;
  for (int32_t j : chain) {
    if (P + depth[j] >= len) break;
    r.vs_parallel = std::max(r.vs_parallel, row_rel_err(tree.slice(0, j, j + 1).contiguous(), row(parallel, P + depth[j])));
    accepted.push_back(j);
  }
  // Commit the chain (it matches the sequence), then keep decoding the sequence.
  m.advance(state, tree_ids, parent, accepted);
  r.accepted = static_cast<int64_t>(accepted.size());
  const int64_t from = state.position(), to = std::min(len, from + o.continue_tokens);
  if (to > from) {
    const Tensor next = m.decode(state, ids_tensor(std::vector<int32_t>(ids.begin() + from, ids.begin() + to)));
    r.advance = row_rel_err(next, parallel.slice(1, from, to).contiguous());
  }
  return r;
}

json layer_report(const LlamaModel& m, const DecodeState& state, const std::vector<BranchStats>& stats) {
  json layers = json::array();
  for (int64_t i = 0; i < m.num_layers(); ++i) {
    const AttentionMixer& mixer = *m.layer(i).mixer;
    json l{{"layer", i}, {"attention", mixer.kind()}, {"state_bytes", state.layers[i]->bytes()}};
    json branches = json::object();
    for (const auto& [name, sum] : stats[i].sum_squares) branches[name + "_rms"] = stats[i].rms(name);
    if (!branches.empty()) l["branches"] = branches;
    for (const auto& [name, t] : mixer.persistent_tensors())
      if (name == "la.lambda_local" || name == "la.lambda_global") l[name.substr(3)] = t.item();
    layers.push_back(l);
  }
  return layers;
}

}  // namespace

std::vector<int64_t> tree_positions(const LlamaModel& m, int64_t len) {
  AttentionSpec spec = m.attention_spec();
  const int64_t G = spec_int(spec, "group_size", 64), C = spec_int(spec, "conv_taps", 32),
                W = spec_int(spec, "window", 0);
  std::set<int64_t> ps{0, 1, C - 2, G - 3, G - 2, G - 1, G, 2 * G - 3, 2 * G - 2, 2 * G - 1, 2 * G, len / 2};
  if (W > 0) ps.insert({W - 1, W});
  std::vector<int64_t> out;
  for (int64_t p : ps)
    if (p >= 0 && p <= len - 2) out.push_back(p);
  return out;
}

int64_t perturb_linear_attention(const LlamaModel& m, uint64_t seed, double scale) {
  Philox rng(seed);
  int64_t changed = 0;
  for (int64_t i = 0; i < m.num_layers(); ++i)
    for (const auto& [name, t] : m.layer(i).mixer->persistent_tensors()) {
      if (name == "la.omega") continue;  // fixed random features, not a trained parameter
      std::vector<double> v = t.to_vector<double>();
      for (double& x : v) x += scale * rng.normal();
      Tensor(t).copy_from(Tensor::from_vector(v, t.shape()));
      ++changed;
    }
  return changed;
}

nlohmann::json check_forms(const LlamaModel& m, const FormCheckOptions& o) {
  LINSPEC_CHECK(o.len >= 2, "check_forms: len must be at least 2");
  NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  Philox rng(o.seed);
  std::vector<int32_t> ids(static_cast<size_t>(o.len));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(m.config().vocab_size)));
  const Tensor all = ids_tensor(ids);

  // Parallel, with per-branch statistics recorded by the linear mixers.
  std::vector<BranchStats> stats(static_cast<size_t>(m.num_layers()));
  for (int64_t i = 0; i < m.num_layers(); ++i)
    if (auto* lm = dynamic_cast<const LinearMixer*>(m.layer(i).mixer)) lm->set_recorder(&stats[i]);
  const Tensor parallel = m.forward(all);
  for (int64_t i = 0; i < m.num_layers(); ++i)
    if (auto* lm = dynamic_cast<const LinearMixer*>(m.layer(i).mixer)) lm->set_recorder(nullptr);

  // Recurrent, one token at a time; the worst position is reported too.
  DecodeState state = m.new_decode_state(1, o.len);
  double rec = 0;
  int64_t worst_pos = 0;
  for (int64_t t = 0; t < o.len; ++t) {
    const Tensor step = m.decode(state, all.slice(1, t, t + 1).contiguous());
    const double e = row_rel_err(step, parallel.slice(1, t, t + 1).contiguous());
    if (e > rec) rec = e, worst_pos = t;
  }
  // A prefill block from 0, then a block starting mid-sequence (the recurrent form of a multi-token step).
  DecodeState blocks = m.new_decode_state(1, o.len);
  const int64_t cut = o.len / 2 + 1;
  const Tensor a = m.decode(blocks, all.slice(1, 0, cut).contiguous());
  const Tensor b = m.decode(blocks, all.slice(1, cut, o.len).contiguous());
  const double prefill = std::max(row_rel_err(a, parallel.slice(1, 0, cut).contiguous()),
                                  row_rel_err(b, parallel.slice(1, cut, o.len).contiguous()));

  json per_p = json::array();
  double tree_seq = 0, tree_par = 0, adv = 0;
  for (int64_t P : tree_positions(m, o.len)) {
    const TreeResult r = check_tree_at(m, ids, parallel, P, o, rng);
    per_p.push_back({{"P", P}, {"nodes", r.nodes}, {"max_depth", r.max_depth}, {"accepted", r.accepted},
                     {"tree_vs_sequential_err", r.vs_sequential}, {"tree_vs_parallel_err", r.vs_parallel},
                     {"advance_vs_parallel_err", r.advance}});
    tree_seq = std::max(tree_seq, r.vs_sequential);
    tree_par = std::max(tree_par, r.vs_parallel);
    adv = std::max(adv, r.advance);
  }

  json report;
  report["len"] = o.len;
  report["seed"] = o.seed;
  report["recurrent_vs_parallel_err"] = rec;
  report["recurrent_vs_parallel_worst_position"] = worst_pos;
  report["prefill_vs_parallel_err"] = prefill;
  report["tree_vs_sequential_err"] = tree_seq;
  report["tree_vs_parallel_err"] = tree_par;
  report["advance_vs_parallel_err"] = adv;
  report["trees"] = per_p;
  report["layers"] = layer_report(m, state, stats);
  int64_t total = 0;
  for (const auto& l : state.layers) total += l->bytes();
  report["state_bytes_total"] = total;
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace linspec
