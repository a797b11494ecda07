// AdamW against a closed-form reference written here in double precision, plus group semantics
// (decay-free groups, lr_scale, skipped params) and the snapshot round trip.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/rng.h"
#include "trainer/adamw.h"

using namespace linspec;

namespace {

// Independent reference: torch.optim.AdamW's update, one parameter, double precision.
struct RefAdamW {
  double beta1, beta2, eps, wd;
  std::vector<double> p, m, v;
  int64_t t = 0;
  void step(const std::vector<double>& g, double lr) {
    ++t;
    const double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= lr * wd * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double mhat = m[i] / bc1, vhat = v[i] / bc2;
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

Tensor random_param(int64_t n, Philox& rng) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  Tensor t = Tensor::from_vector(v, {n});
  t.set_requires_grad(true);
  return t;
}

std::vector<float> random_grad(int64_t n, Philox& rng, double scale) {
  std::vector<float> g(n);
  for (auto& x : g) x = static_cast<float>(rng.normal() * scale);
  return g;
}

void set_grad(Tensor& p, const std::vector<float>& g) {
  p.zero_grad();
  accumulate_grad(p, Tensor::from_vector(g, p.shape()));
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

double max_rel_diff(const Tensor& p, const std::vector<double>& ref) {
  auto pv = p.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(pv[i] - ref[i]) / std::max(1.0, std::fabs(ref[i])));
  return worst;
}

struct Scenario {
  const char* name;
  AdamWConfig cfg;
  std::vector<double> lrs;
  double grad_scale;
  int64_t n;
};

void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

class AdamWClosedForm : public ::testing::TestWithParam<Scenario> {};

TEST_P(AdamWClosedForm, MatchesReference) {
  const Scenario& sc = GetParam();
  Philox rng(11);
  Tensor p = random_param(sc.n, rng);
  RefAdamW ref{sc.cfg.beta1, sc.cfg.beta2, sc.cfg.eps, sc.cfg.weight_decay, p.to_vector<double>(),
               std::vector<double>(sc.n, 0.0), std::vector<double>(sc.n, 0.0)};
  AdamW opt({ParamGroup{{p}, std::nullopt, 1.0, {}}}, sc.cfg);
  for (double lr : sc.lrs) {
    auto g = random_grad(sc.n, rng, sc.grad_scale);
    set_grad(p, g);
    opt.step(lr);
    ref.step(as_double(g), lr);
    // Each update moves p by ~lr; f32 rounding of p (~6e-8 relative) must be far below that.
    EXPECT_LT(max_rel_diff(p, ref.p), 2e-6) << sc.name << " after step " << opt.step_count();
  }
  EXPECT_EQ(opt.step_count(), static_cast<int64_t>(sc.lrs.size()));
}

AdamWConfig config(double beta1, double beta2, double eps, double wd) {
  AdamWConfig c;
  c.beta1 = beta1, c.beta2 = beta2, c.eps = eps, c.weight_decay = wd;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, AdamWClosedForm,
    ::testing::Values(
        Scenario{"no_decay", config(0.9, 0.999, 1e-8, 0.0), {1e-3, 3e-3, 1e-2, 5e-4, 2e-3}, 1.0, 37},
        Scenario{"decay", config(0.9, 0.999, 1e-8, 0.1), {1e-2, 3e-2, 5e-3, 2e-2}, 1.0, 37},
        // Gradients ~eps-sized so where eps sits (outside the sqrt) matters at the 10% level.
        Scenario{"eps_outside_sqrt", config(0.8, 0.95, 1e-3, 0.05), {1e-2, 2e-2, 3e-2}, 1e-3, 29},
        // Crosses the kernel's 65536-element chunk boundary with a ragged tail.
        Scenario{"large_chunked", config(0.9, 0.99, 1e-8, 0.01), {1e-3, 2e-3, 1e-3}, 0.1, 3 * 65536 + 5}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

TEST(AdamW, ZeroDecayGroupIsNotDecayed) {
  // Zero gradients isolate the decay: Adam's step is 0/(0+eps) = 0, so only decay can move a param.
  Philox rng(3);
  Tensor decayed = random_param(13, rng), inherits = random_param(13, rng), plain = random_param(13, rng);
  const auto d0 = decayed.to_vector<double>(), i0 = inherits.to_vector<double>();
  const auto p0 = plain.to_vector<float>();
  ParamGroup with_decay{{decayed}, 0.2, 1.0, {}};
  ParamGroup default_decay{{inherits}, std::nullopt, 1.0, {}};  // takes cfg.weight_decay = 0.1
  ParamGroup no_decay{{plain}, 0.0, 1.0, {}};
  AdamW opt({with_decay, default_decay, no_decay}, config(0.9, 0.999, 1e-8, 0.1));
  const double lr = 0.05;
  for (int s = 0; s < 3; ++s) {
    for (Tensor* t : {&decayed, &inherits, &plain}) set_grad(*t, std::vector<float>(13, 0.f));
    opt.step(lr);
  }
  auto d = decayed.to_vector<double>(), i = inherits.to_vector<double>();
  auto p = plain.to_vector<float>();
  for (int k = 0; k < 13; ++k) {
    EXPECT_NEAR(d[k], d0[k] * std::pow(1 - lr * 0.2, 3), 1e-6);
    EXPECT_NEAR(i[k], i0[k] * std::pow(1 - lr * 0.1, 3), 1e-6);
    EXPECT_EQ(p[k], p0[k]);  // bit-exact: untouched
  }
}

TEST(AdamW, LrScaleAndSkippedParams) {
  Philox rng(5);
  AdamWConfig cfg = config(0.9, 0.99, 1e-8, 0.1);
  Tensor a = random_param(7, rng), b = random_param(5, rng);
  RefAdamW ra{0.9, 0.99, 1e-8, 0.1, a.to_vector<double>(), std::vector<double>(7), std::vector<double>(7)};
  RefAdamW rb{0.9, 0.99, 1e-8, 0.0, b.to_vector<double>(), std::vector<double>(5), std::vector<double>(5)};
  AdamW opt({ParamGroup{{a}, std::nullopt, 1.0, {"a"}}, ParamGroup{{b}, 0.0, 0.25, {"b"}}}, cfg);
  const std::vector<double> lrs = {1e-2, 2e-2, 1e-2, 3e-2};
  for (size_t s = 0; s < lrs.size(); ++s) {
    auto ga = random_grad(7, rng, 1.0), gb = random_grad(5, rng, 1.0);
    set_grad(a, ga);
    ra.step(as_double(ga), lrs[s]);
    // b has no gradient in the first two steps: skipped, and its bias correction starts at its own t=1.
    if (s >= 2) {
      set_grad(b, gb);
      rb.step(as_double(gb), lrs[s] * 0.25);
    } else {
      b.zero_grad();
    }
    const auto b_before = b.to_vector<float>();
    opt.step(lrs[s]);
    EXPECT_LT(max_rel_diff(a, ra.p), 2e-6) << "step " << s;
    EXPECT_LT(max_rel_diff(b, rb.p), 2e-6) << "step " << s;
    if (s < 2) {
      EXPECT_EQ(b.to_vector<float>(), b_before);
    }
  }
  // State names come from the groups; b was updated twice, a four times.
  auto st = opt.state();
  ASSERT_EQ(st.back().name, "updates");
  EXPECT_EQ(st.back().tensor.to_vector<int64_t>(), (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(st[0].name, "m/a");
  EXPECT_EQ(st[3].name, "v/b");
}

TEST(AdamW, StateRoundTripContinuesIdentically) {
  Philox rng(9);
  AdamWConfig cfg = config(0.9, 0.999, 1e-8, 0.05);
  Tensor w1 = random_param(11, rng), w2 = random_param(65536 + 3, rng), unused = random_param(3, rng);
  std::vector<std::vector<float>> g1, g2;
  for (int s = 0; s < 6; ++s) g1.push_back(random_grad(11, rng, 1.0)), g2.push_back(random_grad(65536 + 3, rng, 1.0));
  auto make = [&](Tensor& x, Tensor& y, Tensor& z) {
    return AdamW({ParamGroup{{x, y}, std::nullopt, 1.0, {"w1", "w2"}}, ParamGroup{{z}, 0.0, 1.0, {"unused"}}}, cfg);
  };
  auto run = [&](AdamW& opt, Tensor& x, Tensor& y, Tensor& z, int from, int to) {
    for (int s = from; s < to; ++s) {
      set_grad(x, g1[s]);
      set_grad(y, g2[s]);
      z.zero_grad();
      opt.step(1e-3 * (s + 1));
    }
  };
  AdamW a = make(w1, w2, unused);
  run(a, w1, w2, unused, 0, 3);

  // Snapshot: params and optimizer state, copied into a fresh optimizer over copies of the params.
  Tensor c1 = w1.detach().clone(), c2 = w2.detach().clone(), c3 = unused.detach().clone();
  for (Tensor* t : {&c1, &c2, &c3}) t->set_requires_grad(true);
  AdamW b = make(c1, c2, c3);
  const auto saved = a.state();
  ASSERT_EQ(saved.size(), 5u);  // m/v for w1, w2; nothing for the never-updated param; updates
  b.load_state(a.step_count(), saved);
  EXPECT_EQ(b.step_count(), 3);

  run(a, w1, w2, unused, 3, 6);
  run(b, c1, c2, c3, 3, 6);
  EXPECT_EQ(w1.to_vector<float>(), c1.to_vector<float>());
  EXPECT_EQ(w2.to_vector<float>(), c2.to_vector<float>());
  auto sa = a.state(), sb = b.state();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].name, sb[i].name);
    if (sa[i].tensor.dtype() == DType::F32) {
      EXPECT_EQ(sa[i].tensor.to_vector<float>(), sb[i].tensor.to_vector<float>()) << sa[i].name;
    }
  }
  // The saved copies are not aliased by the live optimizer.
  EXPECT_NE(saved[0].tensor.to_vector<float>(), sa[0].tensor.to_vector<float>());
}

TEST(AdamW, LoadStateRejectsMismatchesWithoutChangingState) {
  Philox rng(1);
  Tensor w = random_param(4, rng);
  AdamW opt({ParamGroup{{w}, std::nullopt, 1.0, {"w"}}}, AdamWConfig{});
  set_grad(w, random_grad(4, rng, 1.0));
  opt.step(1e-3);
  auto good = opt.state();

  auto missing = good;
  missing.erase(missing.begin());  // drops m/w
  EXPECT_THROW(opt.load_state(1, missing), InputError);
  auto wrong_shape = good;
  wrong_shape[1].tensor = Tensor::zeros({5});
  try {
    opt.load_state(1, wrong_shape);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("v/w"), std::string::npos) << e.what();
  }
  auto extra = good;
  extra.push_back({"m/nonexistent", Tensor::zeros({4})});
  EXPECT_THROW(opt.load_state(1, extra), InputError);
  EXPECT_EQ(opt.step_count(), 1);
  EXPECT_EQ(opt.state()[0].tensor.to_vector<float>(), good[0].tensor.to_vector<float>());
}

TEST(AdamW, RejectsNonMasterParams) {
  Tensor frozen = Tensor::zeros({3});  // no requires_grad
  EXPECT_THROW(AdamW({ParamGroup{{frozen}, std::nullopt, 1.0, {}}}, AdamWConfig{}), std::logic_error);
  Tensor f64 = Tensor::zeros({3}, DType::F64);
  f64.set_requires_grad(true);
  EXPECT_THROW(AdamW({ParamGroup{{f64}, std::nullopt, 1.0, {}}}, AdamWConfig{}), std::logic_error);
}

}  // namespace
