// Layer ops on the f32 path against naive reference loops written here (forward and backward), and
// RoPE against golden outputs from PyTorch (tests/reference/make_rope_golden.py).
// Sizes are chosen so the OpenMP-parallel branches of the kernels run, not only the serial ones.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/support/gradcheck.h"

using namespace linspec;
using linspec::testing::random_ints;
using linspec::testing::random_normal;

namespace {

// Largest |a - b| / max(1, |b|) over two equally sized f32 tensors / vectors.
double max_rel_diff(const std::vector<float>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(1.0, std::fabs(b[i])));
  return worst;
}

// Runs y = op(leaves) and backpropagates `seed` into y; returns the leaves' gradients.
std::vector<Tensor> grads_of(const std::function<Tensor(const std::vector<Tensor>&)>& op, std::vector<Tensor> inputs,
                             const Tensor& seed) {
  for (auto& t : inputs) t = t.clone().set_requires_grad(true);
  Tape tape;
  TapeScope scope(tape);
  backward(op(inputs), seed);
  std::vector<Tensor> g;
  for (auto& t : inputs) g.push_back(t.grad());
  return g;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---- embedding ----

TEST(LayersF32, EmbeddingGathersRowsAndScatterAddsRepeatedIds) {
  Philox rng(7);
  const int64_t V = 37, D = 96, N = 1500;  // N·D > the parallel threshold; ids repeat ~40 times each
  Tensor table = random_normal({V, D}, DType::F32, rng);
  Tensor ids = random_ints({3, N / 3}, 0, V, rng);
  Tensor g = random_normal({3, N / 3, D}, DType::F32, rng);

  Tensor out = ops::embedding(table, ids);
  ASSERT_EQ(out.shape(), (Shape{3, N / 3, D}));
  const float* t = table.data<float>();
  const int32_t* id = ids.data<int32_t>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < D; ++j) ASSERT_EQ(out.data<float>()[i * D + j], t[id[i] * D + j]) << "row " << i;

  std::vector<double> expected(V * D, 0.0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < D; ++j) expected[id[i] * D + j] += g.data<float>()[i * D + j];
  Tensor leaf = table.clone().set_requires_grad(true);
  for (int step = 1; step <= 2; ++step) {  // the second backward accumulates into the existing grad in place
    Tape tape;
    TapeScope scope(tape);
    backward(ops::embedding(leaf, ids), g);
    std::vector<double> want(expected);
    for (double& v : want) v *= step;
    EXPECT_LT(max_rel_diff(leaf.grad().to_vector<float>(), want), 1e-5) << "after backward " << step;
  }
}

// ---- rmsnorm ----

TEST(LayersF32, RmsNormMatchesNaiveLoopForwardAndBackward) {
  Philox rng(8);
  const int64_t rows = 37, D = 576;
  const double eps = 1e-5;
  Tensor x = random_normal({rows, D}, DType::F32, rng, 3.0);
  Tensor w = random_normal({D}, DType::F32, rng);
  Tensor g = random_normal({rows, D}, DType::F32, rng);
  const float *xp = x.data<float>(), *wp = w.data<float>(), *gp = g.data<float>();

  // Naive forward and hand-derived backward in double.
  std::vector<double> y(rows * D), gx(rows * D), gw(D, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < D; ++j) ss += double(xp[r * D + j]) * xp[r * D + j];
    const double s = 1.0 / std::sqrt(ss / D + eps);
    double dot = 0;
    for (int64_t j = 0; j < D; ++j) dot += double(gp[r * D + j]) * wp[j] * xp[r * D + j];
    for (int64_t j = 0; j < D; ++j) {
      const int64_t k = r * D + j;
      y[k] = xp[k] * s * wp[j];
      gx[k] = s * wp[j] * gp[k] - xp[k] * s * s * s * dot / D;
      gw[j] += double(gp[k]) * xp[k] * s;
    }
  }
  EXPECT_LT(max_rel_diff(ops::rmsnorm(x, w, eps).to_vector<float>(), y), 2e-6);
  auto grads = grads_of([&](const std::vector<Tensor>& in) { return ops::rmsnorm(in[0], in[1], eps); }, {x, w}, g);
  EXPECT_LT(max_rel_diff(grads[0].to_vector<float>(), gx), 1e-5);
  EXPECT_LT(max_rel_diff(grads[1].to_vector<float>(), gw), 1e-5);
}

// ---- rope ----

// Naive HF rotate-half RoPE in double; inverse rotates by the negative angle.
std::vector<double> naive_rope(const Tensor& x, double theta, int64_t pos0, const std::vector<float>& inv_freq,
                               bool inverse = false) {
  const int64_t BH = x.size(0) * x.size(1), T = x.size(2), d = x.size(3), h = d / 2;
  const auto xv = x.to_vector<double>();
  std::vector<double> out(xv.size());
  for (int64_t b = 0; b < BH; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < h; ++i) {
        const double f = inv_freq.empty() ? std::pow(theta, -2.0 * i / d) : inv_freq[i];
        const double a = (pos0 + t) * f * (inverse ? -1 : 1);
        const int64_t k = (b * T + t) * d + i;
        out[k] = xv[k] * std::cos(a) - xv[k + h] * std::sin(a);
        out[k + h] = xv[k + h] * std::cos(a) + xv[k] * std::sin(a);
      }
  return out;
}

TEST(LayersF32, RopeMatchesNaiveLoopForwardAndBackward) {
  Philox rng(9);
  struct Case {
    Shape shape;
    double theta;
    int64_t pos0;
    std::vector<float> inv_freq;
  };
  const std::vector<Case> cases = {{{2, 9, 33, 64}, 100000.0, 0, {}},  // SmolLM head geometry, parallel path
                                   {{1, 3, 7, 8}, 10000.0, 5, {}},
                                   {{2, 1, 5, 6}, 10000.0, 3, {1.0f, 0.2f, 0.01f}}};
  for (const auto& c : cases) {
    SCOPED_TRACE(shape_str(c.shape) + " pos0=" + std::to_string(c.pos0));
    Tensor x = random_normal(c.shape, DType::F32, rng);
    EXPECT_LT(max_rel_diff(ops::rope(x, c.theta, c.pos0, c.inv_freq).to_vector<float>(),
                           naive_rope(x, c.theta, c.pos0, c.inv_freq)),
              1e-5);
    // f64 path: the same formula without f32 rounding.
    auto y64 = ops::rope(x.to(DType::F64), c.theta, c.pos0, c.inv_freq).to_vector<double>();
    auto ref = naive_rope(x, c.theta, c.pos0, c.inv_freq);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(y64[i], ref[i], 1e-5) << i;
    // Backward is the transpose of the rotation, i.e. the inverse rotation of the output gradient.
    Tensor g = random_normal(c.shape, DType::F32, rng);
    Tensor gx = grads_of([&](const std::vector<Tensor>& in) { return ops::rope(in[0], c.theta, c.pos0, c.inv_freq); },
                         {x}, g)[0];
    EXPECT_LT(max_rel_diff(gx.to_vector<float>(), naive_rope(g, c.theta, c.pos0, c.inv_freq, true)), 1e-5);
  }
}

TEST(LayersGolden, RopeMatchesPyTorchHfFormula) {
  const std::string path = std::string(LINSPEC_SOURCE_DIR) + "/tests/reference/golden/rope_small.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path;
  const auto doc = nlohmann::json::parse(in);
  ASSERT_GE(doc.at("cases").size(), 3u);
  for (const auto& c : doc.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const Shape shape = c.at("shape").get<Shape>();
    const auto input = c.at("input").get<std::vector<float>>();
    const auto expected = c.at("expected").get<std::vector<double>>();
    const std::vector<float> inv_freq = c.contains("inv_freq") ? c.at("inv_freq").get<std::vector<float>>()
                                                               : std::vector<float>{};
    Tensor x = Tensor::from_vector(input, shape);
    const double theta = c.at("theta").get<double>();
    const int64_t pos0 = c.at("pos0").get<int64_t>();
    for (DType dt : {DType::F32, DType::F64}) {
      const auto got = ops::rope(x.to(dt), theta, pos0, inv_freq).to_vector<double>();
      ASSERT_EQ(got.size(), expected.size());
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 1e-5) << dtype_name(dt) << " @" << i;
    }
  }
}

// ---- silu / swiglu ----

TEST(LayersF32, SiluAndSwigluMatchNaiveLoops) {
  Philox rng(10);
  const int64_t n = 3 * 1536 * 7;  // parallel path
  Tensor gate = random_normal({3, 7, 1536}, DType::F32, rng, 4.0);
  // Saturated and clamped regions of the vectorised exp.
  const float extremes[] = {-200.f, -100.f, -88.5f, -87.f, -30.f, -1e-4f, 0.f, 1e-4f, 30.f, 88.5f, 100.f, 200.f};
  for (size_t i = 0; i < std::size(extremes); ++i) gate.data<float>()[i * 97] = extremes[i];
  Tensor up = random_normal(gate.shape(), DType::F32, rng);
  Tensor g = random_normal(gate.shape(), DType::F32, rng);
  const float *gp = gate.data<float>(), *up_p = up.data<float>(), *gg = g.data<float>();

  std::vector<double> silu(n), dsilu(n), sw(n), dgate(n), dup(n);
  for (int64_t i = 0; i < n; ++i) {
    const double x = gp[i], s = sigmoid(x), d = s * (1 + x * (1 - s));
    silu[i] = x * s;
    dsilu[i] = gg[i] * d;
    sw[i] = x * s * up_p[i];
    dgate[i] = gg[i] * up_p[i] * d;
    dup[i] = gg[i] * x * s;
  }
  EXPECT_LT(max_rel_diff(ops::silu(gate).to_vector<float>(), silu), 1e-6);
  EXPECT_LT(max_rel_diff(ops::swiglu(gate, up).to_vector<float>(), sw), 1e-6);
  auto gs = grads_of([](const std::vector<Tensor>& in) { return ops::silu(in[0]); }, {gate}, g);
  EXPECT_LT(max_rel_diff(gs[0].to_vector<float>(), dsilu), 1e-6);
  auto gw = grads_of([](const std::vector<Tensor>& in) { return ops::swiglu(in[0], in[1]); }, {gate, up}, g);
  EXPECT_LT(max_rel_diff(gw[0].to_vector<float>(), dgate), 1e-6);
  EXPECT_LT(max_rel_diff(gw[1].to_vector<float>(), dup), 1e-6);
  for (float v : ops::silu(gate).to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
