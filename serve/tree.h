// Static candidate trees for speculative decoding with draft heads (docs/method.md §5).
//
// A tree is a list of paths of top-k indices, as in Medusa's "choices": the path [i1, i2, ..., im] is the node
// whose token at depth d is the i_d-th most likely token of head d (head 1 proposes depth 1, ...). Node 0 is the
// root: the token the target itself already chose (the previous step's bonus), so a tree of P paths verifies P+1
// nodes. Paths must be prefix-closed (every prefix of a path is itself a path) and unique.
//
// Tree file (JSON): {"paths": [[0], [1], [0, 0], ...]} or just the list of paths. Errors name the file and the path.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linspec {

struct TreeSpec {
  std::string name;                         // "default", "chain", or the file it came from
  std::vector<std::vector<int32_t>> paths;  // one per non-root node, in node order (node i+1 = paths[i])
  // Per node (index 0 = root): parent (-1 for the root), depth (root 0) and top-k index at its depth (root -1).
  std::vector<int32_t> parent, depth, rank;
  int64_t max_depth = 0;
  std::vector<int64_t> top_k;  // top_k[d-1]: how many candidates head d must supply (max rank + 1)
  double expected_tokens = 0;  // dynamic trees: 1 + the nodes' path probabilities, the tokens the draft expects

  int64_t nodes() const { return static_cast<int64_t>(parent.size()); }
  nlohmann::json describe() const;  // {"name", "nodes", "depth", "top_k"}
};

// Builds a tree from paths (sorted by depth, then lexicographically, so parents precede children). InputError
// naming `where` for an empty or negative path, a path deeper than `max_depth`, a duplicate, or a missing prefix.
TreeSpec tree_from_paths(std::vector<std::vector<int32_t>> paths, int64_t max_depth, const std::string& where);

// The default tree: the `nodes` - 1 paths of highest assumed acceptance Π_d a_d · r(i_d) with a_d falling with depth
// and r(i) with rank (Medusa-style sparse tree without a calibration run), depth <= min(heads, 4): 64 nodes.
TreeSpec default_tree(int64_t heads = 4, int64_t nodes = 64);

// A single chain of `length` candidates below the root (rank 0 at every depth): heads' top-1 only.
TreeSpec chain_tree(int64_t length);

// A dynamic tree (EAGLE-2 style) for one step: probs[d-1][i] is head d's probability of its i-th candidate. Nodes are
// taken best-first by the product of the probabilities along their path (that order is prefix-closed), up to
// `max_nodes` including the root; the tree keeps the prefix that maximises the expected tokens of the step,
// 1 + Σ path products, per millisecond of `step_ms(nodes)` (the verification cost model plus the fixed cost of a
// step, serve/decode_cost.h). Named "auto".
TreeSpec dynamic_tree(const std::vector<std::vector<double>>& probs, int64_t max_nodes,
                      const std::function<double(int64_t)>& step_ms);

// How many nodes (root included) of a best-first node list to verify: path_probs[i] is the (i+2)-th node's path
// probability (the root's is 1 and not listed), in non-increasing order. The count maximises expected tokens,
// 1 + Σ path probabilities, per millisecond of step_ms(count).
int64_t best_prefix_nodes(const std::vector<double>& path_probs, const std::function<double(int64_t)>& step_ms);

// "default" or a JSON file as above; `heads` bounds the depth.
TreeSpec load_tree(const std::string& name_or_path, int64_t heads);

}  // namespace linspec
