#include "serve/tree.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "core/error.h"

namespace linspec {
namespace {

std::string path_str(const std::vector<int32_t>& p) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < p.size(); ++i) os << (i ? ", " : "") << p[i];
  os << "]";
  return os.str();
}

constexpr int64_t kMaxTreeNodes = 4096;

}  // namespace

nlohmann::json TreeSpec::describe() const {
  return {{"name", name}, {"nodes", nodes()}, {"depth", max_depth}, {"top_k", top_k}};
}

TreeSpec tree_from_paths(std::vector<std::vector<int32_t>> paths, int64_t max_depth, const std::string& where) {
  if (paths.empty()) throw_input_error(where, ": the tree has no paths");
  if (static_cast<int64_t>(paths.size()) >= kMaxTreeNodes)
    throw_input_error(where, ": ", paths.size(), " paths; a tree may have at most ", kMaxTreeNodes - 1);
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto& p = paths[i];
    if (p.empty()) throw_input_error(where, ": path ", i, " is empty");
    if (static_cast<int64_t>(p.size()) > max_depth)
      throw_input_error(where, ": path ", i, " ", path_str(p), " is ", p.size(), " deep; the draft has ", max_depth,
                        " heads");
    for (int32_t r : p)
      if (r < 0 || r >= 1024) throw_input_error(where, ": path ", i, " ", path_str(p), ": top-k index ", r, " outside [0, 1024)");
  }
  std::stable_sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  TreeSpec t;
  t.paths = paths;
  t.parent = {-1};
  t.depth = {0};
  t.rank = {-1};
  std::map<std::vector<int32_t>, int32_t> index;
  for (const auto& p : paths) {
    if (index.count(p)) throw_input_error(where, ": path ", path_str(p), " appears twice");
    int32_t parent = 0;
    if (p.size() > 1) {
      auto it = index.find(std::vector<int32_t>(p.begin(), p.end() - 1));
      if (it == index.end())
        throw_input_error(where, ": path ", path_str(p), " has no parent path ",
                          path_str(std::vector<int32_t>(p.begin(), p.end() - 1)), " (paths must be prefix-closed)");
      parent = it->second;
    }
    const int32_t node = static_cast<int32_t>(t.parent.size());
    index[p] = node;
    t.parent.push_back(parent);
    t.depth.push_back(static_cast<int32_t>(p.size()));
    t.rank.push_back(p.back());
    t.max_depth = std::max<int64_t>(t.max_depth, static_cast<int64_t>(p.size()));
  }
  t.top_k.assign(t.max_depth, 0);
  for (size_t n = 1; n < t.parent.size(); ++n)
    t.top_k[t.depth[n] - 1] = std::max<int64_t>(t.top_k[t.depth[n] - 1], t.rank[n] + 1);
  return t;
}

int64_t best_prefix_nodes(const std::vector<double>& path_probs, const std::function<double(int64_t)>& step_ms) {
  // Expected tokens of a step: the bonus token plus each node's chance to be accepted.
  int64_t best = 1;
  double expected = 1.0, best_rate = 1.0 / std::max(step_ms(1), 1e-9);
  for (size_t i = 0; i < path_probs.size(); ++i) {
    const int64_t n = static_cast<int64_t>(i) + 2;
    expected += path_probs[i];
    const double rate = expected / std::max(step_ms(n), 1e-9);
    if (rate > best_rate) best_rate = rate, best = n;
  }
  return best;
}

TreeSpec dynamic_tree(const std::vector<std::vector<double>>& probs, int64_t max_nodes,
                      const std::function<double(int64_t)>& step_ms) {
  LINSPEC_CHECK(max_nodes >= 1 && max_nodes <= kMaxTreeNodes, "dynamic_tree: max_nodes ", max_nodes);
  struct Candidate {
    double score;
    int32_t parent, depth, rank;
    bool operator<(const Candidate& o) const {  // max-heap on score; ties: shallower, then lower rank, then parent
      if (score != o.score) return score < o.score;
      if (depth != o.depth) return depth > o.depth;
      if (rank != o.rank) return rank > o.rank;
      return parent > o.parent;
    }
  };
  const int32_t depths = static_cast<int32_t>(probs.size());
  auto prob = [&](int32_t depth, int32_t rank) {
    const auto& p = probs[depth - 1];
    return rank < static_cast<int32_t>(p.size()) ? p[rank] : -1.0;
  };
  TreeSpec t;
  t.name = "auto";
  t.parent = {-1}, t.depth = {0}, t.rank = {-1};
  std::vector<double> score{1.0};
  std::vector<Candidate> heap;
  auto push = [&](int32_t parent, int32_t depth, int32_t rank) {
    if (depth > depths || prob(depth, rank) < 0) return;
    heap.push_back({score[parent] * prob(depth, rank), parent, depth, rank});
    std::push_heap(heap.begin(), heap.end());
  };
  push(0, 1, 0);
  while (t.nodes() < max_nodes && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    const int32_t node = static_cast<int32_t>(t.parent.size());
    t.parent.push_back(c.parent), t.depth.push_back(c.depth), t.rank.push_back(c.rank);
    score.push_back(c.score);
    push(node, c.depth + 1, 0);           // its best child
    push(c.parent, c.depth, c.rank + 1);  // its next sibling
  }
  const int64_t best = best_prefix_nodes(std::vector<double>(score.begin() + 1, score.end()), step_ms);
  t.parent.resize(best), t.depth.resize(best), t.rank.resize(best);
  t.expected_tokens = std::accumulate(score.begin(), score.begin() + best, 0.0);  // score[0] = 1: the bonus token
  for (int64_t n = 1; n < best; ++n) {
    std::vector<int32_t> path;
    for (int32_t k = static_cast<int32_t>(n); k > 0; k = t.parent[k]) path.insert(path.begin(), t.rank[k]);
    t.paths.push_back(path);
    t.max_depth = std::max<int64_t>(t.max_depth, t.depth[n]);
  }
  t.top_k.assign(t.max_depth, 0);
  for (int64_t n = 1; n < best; ++n)
    t.top_k[t.depth[n] - 1] = std::max<int64_t>(t.top_k[t.depth[n] - 1], t.rank[n] + 1);
  return t;
}

TreeSpec default_tree(int64_t heads, int64_t nodes) {
  LINSPEC_CHECK(heads >= 1 && nodes >= 2 && nodes <= kMaxTreeNodes, "default_tree: heads ", heads, ", nodes ", nodes);
  const int64_t depth = std::min<int64_t>(heads, 4);
  const int32_t ranks = 10;
  // Assumed chance that depth d's head is right at all, and the share of that mass at rank i (a Zipf-like tail).
  const double a[] = {0.70, 0.55, 0.45, 0.40};
  auto r = [](int32_t i) { return 0.55 / std::pow(i + 1.0, 1.6); };
  std::vector<std::pair<double, std::vector<int32_t>>> cand;
  std::vector<std::pair<double, std::vector<int32_t>>> frontier{{1.0, {}}};
  for (int64_t d = 0; d < depth; ++d) {
    std::vector<std::pair<double, std::vector<int32_t>>> next;
    for (const auto& [p, path] : frontier)
      for (int32_t i = 0; i < ranks; ++i) {
        auto q = path;
        q.push_back(i);
        next.emplace_back(p * a[d] * r(i), q);
      }
    cand.insert(cand.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  // Highest probability first; a path's probability is below its prefix's and its elder sibling's, so the top
  // set is prefix-closed (ties broken towards shorter, then smaller paths, which keeps that true).
  std::stable_sort(cand.begin(), cand.end(), [](const auto& x, const auto& y) {
    if (x.first != y.first) return x.first > y.first;
    return x.second.size() != y.second.size() ? x.second.size() < y.second.size() : x.second < y.second;
  });
  std::vector<std::vector<int32_t>> paths;
  for (int64_t i = 0; i < nodes - 1 && i < static_cast<int64_t>(cand.size()); ++i) paths.push_back(cand[i].second);
  TreeSpec t = tree_from_paths(paths, heads, "default tree");
  t.name = "default";
  return t;
}

TreeSpec chain_tree(int64_t length) {
  LINSPEC_CHECK(length >= 1, "chain_tree: length ", length);
  std::vector<std::vector<int32_t>> paths;
  for (int64_t d = 1; d <= length; ++d) paths.emplace_back(d, 0);
  TreeSpec t = tree_from_paths(paths, length, "chain");
  t.name = "chain";
  return t;
}

TreeSpec load_tree(const std::string& name_or_path, int64_t heads) {
  if (name_or_path == "default") return default_tree(heads);
  std::ifstream in(name_or_path);
  if (!in) throw_input_error(name_or_path, ": cannot open the tree file");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw_input_error(name_or_path, ": not valid JSON");
  const nlohmann::json* list = &j;
  if (j.is_object()) {
    if (!j.contains("paths")) throw_input_error(name_or_path, ": missing key 'paths'");
    list = &j.at("paths");
  }
  if (!list->is_array()) throw_input_error(name_or_path, ": key 'paths' must be a list of lists of integers");
  std::vector<std::vector<int32_t>> paths;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& p = (*list)[i];
    if (!p.is_array()) throw_input_error(name_or_path, ": path ", i, " is not a list");
    std::vector<int32_t> path;
    for (const auto& v : p) {
      if (!v.is_number_integer()) throw_input_error(name_or_path, ": path ", i, " holds ", v.dump(), ", not an integer");
      const int64_t x = v.get<int64_t>();
      if (x < 0 || x >= 1024) throw_input_error(name_or_path, ": path ", i, ": top-k index ", x, " outside [0, 1024)");
      path.push_back(static_cast<int32_t>(x));
    }
    paths.push_back(std::move(path));
  }
  TreeSpec t = tree_from_paths(std::move(paths), heads, name_or_path);
  t.name = name_or_path;
  return t;
}

}  // namespace linspec
