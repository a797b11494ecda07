// Dynamic trees and the machine cost model behind `--tree auto`: the best-first tree from the heads' probabilities,
// the choice of its size from the cost of verifying it, the cost model's interpolation and its cache file checks.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "serve/decode_cost.h"
#include "serve/tree.h"

namespace linspec {
namespace {

TEST(DynamicTree, TakesNodesBestFirstByPathProbability) {
  // Head 1: 0.9, 0.05; head 2: 0.8, 0.1. Path products: [0] .9, [0,0] .72, [0,1] .09, [1] .05, [1,0] .04, ...
  const std::vector<std::vector<double>> probs{{0.9, 0.05}, {0.8, 0.1}};
  const TreeSpec t = dynamic_tree(probs, 5, [](int64_t) { return 1.0; });  // free nodes: all five are kept
  EXPECT_EQ(t.name, "auto");
  EXPECT_EQ(t.parent, (std::vector<int32_t>{-1, 0, 1, 1, 0}));
  EXPECT_EQ(t.depth, (std::vector<int32_t>{0, 1, 2, 2, 1}));
  EXPECT_EQ(t.rank, (std::vector<int32_t>{-1, 0, 0, 1, 1}));
  EXPECT_EQ(t.paths, (std::vector<std::vector<int32_t>>{{0}, {0, 0}, {0, 1}, {1}}));
  EXPECT_EQ(t.max_depth, 2);
  EXPECT_EQ(t.top_k, (std::vector<int64_t>{2, 2}));
}

TEST(DynamicTree, SizeMaximisesExpectedTokensPerMillisecond) {
  const std::vector<std::vector<double>> probs{{0.9, 0.05}, {0.8, 0.1}, {0.5}};
  // Nodes best-first: [0] .9, [0,0] .72, [0,0,0] .36, [0,1] .09: expected tokens 1, 1.9, 2.62, 2.98. At half the
  // root's cost per extra node the rates are 1, 1.27, 1.31, 1.19: three nodes. At the root's full cost no node
  // pays (0.9 < 1 token per root-cost): the root alone.
  EXPECT_EQ(dynamic_tree(probs, 8, [](int64_t n) { return 1.0 + 0.5 * (n - 1); }).nodes(), 3);
  EXPECT_EQ(dynamic_tree(probs, 8, [](int64_t n) { return static_cast<double>(n); }).nodes(), 1);
  // Verification as cheap for 4 nodes as for 1 (memory-bound), dear beyond: four nodes.
  const TreeSpec step = dynamic_tree(probs, 8, [](int64_t n) { return n <= 4 ? 1.0 : 10.0; });
  EXPECT_EQ(step.nodes(), 4);
  EXPECT_EQ(step.parent, (std::vector<int32_t>{-1, 0, 1, 2}));  // the chain [0], [0,0], [0,0,0] (.9, .72, .36)
  // Steep costs: the root alone (plain AR with the target's own token).
  EXPECT_EQ(dynamic_tree(probs, 8, [](int64_t n) { return n == 1 ? 1.0 : 100.0; }).nodes(), 1);
  // The node cap bounds it.
  EXPECT_EQ(dynamic_tree(probs, 3, [](int64_t) { return 1.0; }).nodes(), 3);
}

TEST(DecodeCost, InterpolatesAndExtrapolates) {
  DecodeCost c;
  c.nodes = {1, 2, 4, 8};
  c.verify_ms = {10, 12, 16, 32};
  EXPECT_DOUBLE_EQ(c.verify_ms_at(1), 10);
  EXPECT_DOUBLE_EQ(c.verify_ms_at(3), 14);
  EXPECT_DOUBLE_EQ(c.verify_ms_at(6), 24);
  EXPECT_DOUBLE_EQ(c.verify_ms_at(16), 64);  // the last segment's slope
}

TEST(DecodeCost, JsonRoundTripsAndBadFilesAreRefusedByName) {
  DecodeCost c;
  c.key = "k", c.ar_step_ms = 11, c.draft_ms = 3, c.nodes = {1, 4}, c.verify_ms = {12, 18};
  const DecodeCost back = DecodeCost::from_json(c.to_json(), "cost.json");
  EXPECT_EQ(back.nodes, c.nodes);
  EXPECT_EQ(back.verify_ms, c.verify_ms);
  EXPECT_EQ(back.key, "k");
  nlohmann::json bad = c.to_json();
  bad["nodes"] = {4, 1};
  try {
    DecodeCost::from_json(bad, "cost.json");
    FAIL() << "decreasing sizes accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cost.json"), std::string::npos) << e.what();
  }
  bad = c.to_json();
  bad.erase("verify_ms");
  EXPECT_THROW(DecodeCost::from_json(bad, "cost.json"), InputError);
}

TEST(DecodeCost, CachePathFollowsLinspecCache) {
  ::setenv("LINSPEC_CACHE", "/tmp/linspec-cache-test", 1);
  const std::string a = decode_cost_cache_path("machine A"), b = decode_cost_cache_path("machine B");
  ::unsetenv("LINSPEC_CACHE");
  EXPECT_EQ(a.rfind("/tmp/linspec-cache-test/decode_cost/", 0), 0u) << a;
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace linspec
