// Table-driven gradient checks (central differences in f64) for the layer ops: embedding, rmsnorm,
// rope, silu, swiglu — plus the input validation those ops do.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "core/rng.h"
#include "tests/support/gradcheck.h"

using namespace linspec;
using linspec::testing::GradCase;

namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// A case with default N(0, 1) inputs; `differentiable` empty means all inputs.
GradCase make_case(std::string name, std::vector<Shape> shapes, OpFn fn, std::vector<bool> differentiable = {}) {
  GradCase c;
  c.name = std::move(name);
  c.input_shapes = std::move(shapes);
  c.fn = std::move(fn);
  c.differentiable = std::move(differentiable);
  return c;
}

// Inputs for embedding: a normal table and ids in [0, rows) (with repeats, so scatter-add is exercised).
// `tied` also uses the table as an output head (as SmolLM does), so the table already holds a gradient
// when the embedding's backward runs and it scatters into it in place.
GradCase embedding_case(std::string name, Shape table, Shape ids, bool tied = false) {
  const int32_t rows = static_cast<int32_t>(table[0]);
  GradCase c = make_case(
      std::move(name), {table, ids},
      [tied](const std::vector<Tensor>& in) {
        Tensor h = ops::embedding(in[0], in[1]);
        return tied ? ops::matmul(h, in[0], false, true) : h;
      },
      {true, false});
  c.make_input = [rows](size_t i, const Shape& shape, Philox& rng) {
    return i == 1 ? linspec::testing::random_ints(shape, 0, rows, rng)
                  : linspec::testing::random_normal(shape, DType::F64, rng);
  };
  return c;
}

GradCase rope_case(std::string name, Shape x, double theta, int64_t pos0, std::vector<float> inv_freq = {}) {
  return make_case(std::move(name), {x},
                   [=](const std::vector<Tensor>& in) { return ops::rope(in[0], theta, pos0, inv_freq); });
}

std::vector<GradCase> layer_cases() {
  auto norm = [](double eps) {
    return [eps](const std::vector<Tensor>& in) { return ops::rmsnorm(in[0], in[1], eps); };
  };
  auto swiglu = [](const std::vector<Tensor>& in) { return ops::swiglu(in[0], in[1]); };
  auto silu = [](const std::vector<Tensor>& in) { return ops::silu(in[0]); };
  return {
      embedding_case("embedding_2d_ids", {7, 5}, {3, 5}),
      embedding_case("embedding_1d_ids", {4, 3}, {9}),
      embedding_case("embedding_tied_head", {6, 4}, {2, 5}, true),
      make_case("rmsnorm_3d", {{3, 5, 7}, {7}}, norm(1e-6)),
      make_case("rmsnorm_large_eps", {{4, 9}, {9}}, norm(0.5)),
      make_case("rmsnorm_weight_only", {{5, 6}, {6}}, norm(1e-5), {false, true}),
      make_case("rmsnorm_x_only", {{2, 3, 5}, {5}}, norm(1e-5), {true, false}),
      rope_case("rope_pos0_0", {2, 3, 5, 6}, 10000.0, 0),
      rope_case("rope_pos0_5_odd_T", {1, 2, 7, 8}, 10000.0, 5),
      rope_case("rope_smollm_theta", {2, 1, 3, 4}, 100000.0, 11),
      rope_case("rope_custom_inv_freq", {1, 2, 5, 6}, 10000.0, 5, {0.9f, 0.3f, 0.05f}),
      make_case("silu", {{3, 17}}, silu),
      make_case("silu_4d", {{2, 1, 3, 5}}, silu),
      make_case("swiglu", {{2, 3, 11}, {2, 3, 11}}, swiglu),
      make_case("swiglu_gate_only", {{5, 7}, {5, 7}}, swiglu, {true, false}),
      make_case("swiglu_up_only", {{5, 7}, {5, 7}}, swiglu, {false, true}),
  };
}

}  // namespace

namespace linspec::testing {
// gtest prints parameters on failure; the name is the useful part.
void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }
}  // namespace linspec::testing

namespace {

class LayerGradCheck : public ::testing::TestWithParam<GradCase> {};

TEST_P(LayerGradCheck, MatchesCentralDifferences) {
  const GradCase& c = GetParam();
  const auto r = linspec::testing::gradcheck(c);
  EXPECT_LT(r.max_rel_err, 1e-6) << c.name << ": worst " << r.worst;
}

INSTANTIATE_TEST_SUITE_P(Layers, LayerGradCheck, ::testing::ValuesIn(layer_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

// ---- input validation ----

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(LayerErrors, EmbeddingIdOutOfRangeNamesTheId) {
  Tensor table = Tensor::zeros({6, 4});
  std::string msg = error_of([&] { ops::embedding(table, Tensor::from_vector<int32_t>({1, 2, 9, 0}, {4})); });
  EXPECT_NE(msg.find("id 9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 2"), std::string::npos) << msg;
  msg = error_of([&] { ops::embedding(table, Tensor::from_vector<int32_t>({-1}, {1})); });
  EXPECT_NE(msg.find("id -1"), std::string::npos) << msg;
  // The last valid row is accepted.
  EXPECT_NO_THROW(ops::embedding(table, Tensor::from_vector<int32_t>({5}, {1})));
}

// Tree verification rotates each node to its own position: equal, bit for bit, to rotating that row alone with
// ops::rope at that position (what the single-token decode step does), for positions in any order and repeated.
TEST(RopeAtPositions, EachRowEqualsRopeAtItsPosition) {
  const std::vector<int64_t> positions{70, 71, 71, 72, 69, 300, 72};
  const int64_t n = static_cast<int64_t>(positions.size()), d = 8;
  Philox rng(17);
  std::vector<float> xv(2 * 3 * n * d);
  for (auto& v : xv) v = static_cast<float>(rng.normal());
  const Tensor x = Tensor::from_vector(xv, {2, 3, n, d});
  const Tensor inv_freq = Tensor::from_vector(std::vector<float>{1.f, 0.1f, 0.01f, 0.001f}, {d / 2});
  // In one call, and with the rows made once for the pass (what every layer of a verified tree uses).
  const ops::RopeRows rows = ops::rope_rows_at_positions(positions, inv_freq, DType::F32);
  for (const Tensor& rotated : {ops::rope_at_positions(x, positions, inv_freq), ops::rope_with_rows(x, rows)}) {
    const std::vector<float> got = rotated.to_vector<float>();
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<float> want =
          ops::rope(ops::slice(x, 2, i, i + 1).contiguous(), positions[i], inv_freq).to_vector<float>();
      for (int64_t bh = 0; bh < 6; ++bh)
        for (int64_t e = 0; e < d; ++e)
          ASSERT_EQ(got[(bh * n + i) * d + e], want[bh * d + e]) << "node " << i << " position " << positions[i];
    }
  }
  EXPECT_THROW(ops::rope_at_positions(x, {1, 2}, inv_freq), std::logic_error);  // a position per node
  EXPECT_THROW(ops::rope_with_rows(x, ops::rope_rows_at_positions({1, 2}, inv_freq, DType::F32)), std::logic_error);
  EXPECT_THROW(ops::rope_with_rows(ops::slice(x, 3, 0, 4).contiguous(), rows), std::logic_error);  // head dim
  Tensor xg = x.clone();
  xg.set_requires_grad();
  EXPECT_THROW(ops::rope_at_positions(xg, positions, inv_freq), std::logic_error);  // forward only
}

TEST(LayerErrors, ShapeMismatchesAreRejected) {
  EXPECT_THROW(ops::embedding(Tensor::zeros({6, 4}), Tensor::zeros({3})), std::logic_error);  // f32 ids
  EXPECT_THROW(ops::rmsnorm(Tensor::zeros({2, 5}), Tensor::zeros({4}), 1e-6), std::logic_error);
  EXPECT_THROW(ops::rope(Tensor::zeros({1, 1, 2, 5}), 1e4), std::logic_error);  // odd head dim
  EXPECT_THROW(ops::rope(Tensor::zeros({1, 2, 4}), 1e4), std::logic_error);     // not 4-D
  EXPECT_THROW(ops::rope(Tensor::zeros({1, 1, 2, 6}), 1e4, 0, {1.f, 2.f}), std::logic_error);  // d/2 = 3
  EXPECT_THROW(ops::swiglu(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), std::logic_error);
}

}  // namespace
