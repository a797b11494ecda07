// Training the drafts: the divergences (values against direct formulas, gradients by central differences), heads
// self-distillation and hard-label training lowering held-out loss with a few AdamW steps, the draft model's
// objective, on-policy sampling, and /draft/heads, /draft/model checkpoint round trips with bad files refused.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "model/draft_heads.h"
#include "model/draft_model.h"
#include "model/hdf5_util.h"
#include "llama_test_util.h"
#include "speculative_test_util.h"
#include "tests/support/gradcheck.h"
#include "trainer/adamw.h"
#include "trainer/draft_objectives.h"

namespace linspec {
namespace {

using trainer::Divergence;
namespace lt = linspec::testing;

std::vector<double> softmax(const std::vector<double>& z) {
  double mx = -1e300, s = 0;
  for (double x : z) mx = std::max(mx, x);
  std::vector<double> p;
  for (double x : z) s += std::exp(x - mx), p.push_back(std::exp(x - mx));
  for (double& x : p) x /= s;
  return p;
}

double direct_divergence(Divergence d, const std::vector<double>& p, const std::vector<double>& q) {
  double r = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (p[i] + q[i]);
    switch (d) {
      case Divergence::ForwardKL: r += p[i] * std::log(p[i] / q[i]); break;
      case Divergence::ReverseKL: r += q[i] * std::log(q[i] / p[i]); break;
      case Divergence::JSD: r += 0.5 * p[i] * std::log(p[i] / m) + 0.5 * q[i] * std::log(q[i] / m); break;
      case Divergence::TVD: r += 0.5 * std::abs(p[i] - q[i]); break;
    }
  }
  return r;
}

const Divergence kAll[] = {Divergence::ForwardKL, Divergence::ReverseKL, Divergence::JSD, Divergence::TVD};

TEST(DraftDivergences, ValuesMatchDirectFormulas) {
  Philox rng(3);
  const int64_t n = 4, v = 7;
  const Tensor draft = lt::random_normal({2, 2, v}, DType::F64, rng, 2.0);
  const Tensor target = lt::random_normal({2, 2, v}, DType::F64, rng, 2.0);
  const auto zd = draft.to_vector<double>(), zt = target.to_vector<double>();
  for (Divergence d : kAll) {
    double expect = 0;
    for (int64_t r = 0; r < n; ++r) {
      const auto q = softmax({zd.begin() + r * v, zd.begin() + (r + 1) * v});
      const auto p = softmax({zt.begin() + r * v, zt.begin() + (r + 1) * v});
      expect += direct_divergence(d, p, q) / n;
    }
    EXPECT_NEAR(trainer::draft_divergence(draft, target, d).item(), expect, 1e-12) << trainer::divergence_name(d);
    EXPECT_NEAR(trainer::draft_divergence(draft.to(DType::F32), target.to(DType::F32), d).item(), expect, 1e-5);
    EXPECT_NEAR(trainer::draft_divergence(target, target, d).item(), 0.0, 1e-12);
  }
  EXPECT_EQ(trainer::parse_divergence("jsd", "x"), Divergence::JSD);
  EXPECT_THROW(trainer::parse_divergence("l2", "cfg.yaml"), InputError);
}

TEST(DraftDivergences, GradientsMatchCentralDifferences) {
  for (Divergence d : kAll) {
    lt::GradCase c;
    c.name = trainer::divergence_name(d);
    c.input_shapes = {{3, 6}, {3, 6}};
    c.differentiable = {true, false};  // the target is a constant
    c.fn = [d](const std::vector<Tensor>& in) { return trainer::draft_divergence(in[0], in[1], d); };
    const auto r = lt::gradcheck(c);
    EXPECT_LT(r.max_rel_err, 1e-6) << c.name << ": " << r.worst;
  }
  // No gradient reaches the target.
  Philox rng(4);
  Tensor a = lt::random_normal({2, 5}, DType::F64, rng), b = lt::random_normal({2, 5}, DType::F64, rng);
  a.set_requires_grad(true), b.set_requires_grad(true);
  backward(trainer::draft_divergence(a, b, Divergence::ReverseKL));
  EXPECT_TRUE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

// A few AdamW steps of heads-only training on the model's own text lower the held-out loss.
double heads_step_loop(const LlamaModel& m, DraftHeads& heads, const std::string& target, int steps) {
  std::vector<Tensor> params;
  for (const auto& [name, t] : heads.named_parameters()) params.push_back(t);
  AdamWConfig ac;
  ac.lr = 3e-3;
  AdamW opt({ParamGroup{params, std::nullopt, 1.0, {}}}, ac);
  const Tensor train = lt::random_ids(4, 24, m.config().vocab_size, 7);
  Tensor hidden, logits;
  {
    NoGradGuard g;
    hidden = m.forward_hidden(train);
    logits = m.lm_head(hidden);
  }
  const Tensor targets = train.slice(1, 1, 24).contiguous();  // x_{t+1}; the last position has none
  const Tensor hidden_t = hidden.slice(1, 0, 23).contiguous(), logits_t = logits.slice(1, 0, 23).contiguous();
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    const auto loss = trainer::draft_heads_loss(heads, hidden_t, logits_t, targets, {0.8, target});
    if (s == 0) first = loss.total.item();
    last = loss.total.item();
    opt.zero_grad();
    backward(loss.total);
    opt.step();
  }
  EXPECT_LT(last, first) << target << " training loss did not fall";
  return last;
}

TEST(DraftHeadsTraining, SelfDistillationLowersHeldOutKL) {
  const LlamaModel m = lt::speculative_tiny_model("aug", 5, 32);
  DraftHeads heads = DraftHeads::init_from(m, {}, true);
  const Tensor held_out = lt::random_ids(2, 24, 32, 99);
  const auto before = trainer::evaluate_draft_heads(m, heads, held_out);
  heads_step_loop(m, heads, "self", 30);
  const auto after = trainer::evaluate_draft_heads(m, heads, held_out);
  ASSERT_EQ(before.kl.size(), 4u);
  double sum_before = 0, sum_after = 0;
  for (size_t k = 0; k < 4; ++k) {
    sum_before += before.kl[k], sum_after += after.kl[k];
    EXPECT_LT(after.kl[k], before.kl[k]) << "head " << k + 1;
  }
  EXPECT_LT(sum_after, 0.9 * sum_before);
}

TEST(DraftHeadsTraining, HardLabelsAndSharedProjectionTrain) {
  const LlamaModel m = lt::speculative_tiny_model("softmax", 6, 32);
  DraftHeadsConfig cfg;
  cfg.count = 2;
  cfg.shared_projection = true;
  DraftHeads heads = DraftHeads::init_from(m, cfg, true);
  EXPECT_EQ(heads.named_parameters().size(), 4u);  // blocks only: W, b per head
  heads_step_loop(m, heads, "data", 20);
  // The backbone got no gradient (heads-only training with a detached hidden state).
  for (const auto& [name, t] : m.parameters().entries()) EXPECT_FALSE(t.grad().defined()) << name;
  EXPECT_THROW(trainer::draft_heads_loss(heads, Tensor::zeros({1, 4, 32}), Tensor::zeros({1, 4, 32}),
                                         Tensor::zeros({1, 4}, DType::I32), {0.8, "teacher"}),
               InputError);
}

TEST(DraftHeadsTraining, FreshHeadsEqualTheLmHeadAndTheLossWeightsDecay) {
  const LlamaModel m = lt::speculative_tiny_model("softmax", 8, 32);
  const DraftHeads heads = DraftHeads::init_from(m, {}, false);
  const Tensor h = m.forward_hidden(lt::random_ids(1, 6, 32, 1));
  for (int64_t k = 1; k <= 4; ++k)
    EXPECT_EQ(heads.logits(k, h).to_vector<float>(), m.lm_head(h).to_vector<float>()) << "head " << k;
  // With fresh heads, head k's loss is KL(p(·|x≤t+k) ‖ p(·|x≤t)); total = Σ γ^k · that.
  const Tensor logits = m.lm_head(h);
  const auto loss = trainer::draft_heads_loss(heads, h, logits, Tensor(), {0.5, "self"});
  double expect = 0, w = 1;
  for (int64_t k = 1; k <= 4; ++k) {
    w *= 0.5;
    const double kl = ops::kl_divergence(logits.slice(1, 0, 6 - k).contiguous().view({6 - k, 32}),
                                         logits.slice(1, k, 6).contiguous().view({6 - k, 32}))
                          .item();
    EXPECT_NEAR(loss.per_head[k - 1], kl, 1e-6);
    expect += w * kl;
  }
  EXPECT_NEAR(loss.total.item(), expect, 1e-5);
}

// ---- draft model ----

TEST(DraftModel, FirstLayersCopyTrainsWithoutTouchingTheTarget) {
  const LlamaModel target = lt::speculative_tiny_model("aug", 9, 32);
  LlamaOptions o;
  LlamaModel draft = make_draft_model(target, 1, o);
  EXPECT_EQ(draft.num_layers(), 1);
  EXPECT_EQ(draft.layer(0).mixer->kind(), target.layer(0).mixer->kind());
  std::vector<Tensor> params;
  for (const auto& [name, t] : draft.named_parameters()) params.push_back(t);
  const auto before_target = target.checkpoint_tensors().at("layers.0.self_attn.q_proj.weight").to_vector<float>();
  AdamWConfig ac;
  ac.lr = 3e-3;
  AdamW opt({ParamGroup{params, std::nullopt, 1.0, {}}}, ac);
  const Tensor ids = lt::random_ids(2, 16, 32, 3);
  for (Divergence d : kAll) {
    double first = 0, last = 0;
    for (int s = 0; s < 8; ++s) {
      const Tensor loss = trainer::draft_model_loss(draft, target, ids, d);
      if (s == 0) first = loss.item();
      last = loss.item();
      opt.zero_grad();
      backward(loss);
      opt.step();
    }
    EXPECT_LT(last, first) << trainer::divergence_name(d);
  }
  EXPECT_EQ(target.checkpoint_tensors().at("layers.0.self_attn.q_proj.weight").to_vector<float>(), before_target);
  EXPECT_THROW(make_draft_model(target, 3, o), InputError);
  EXPECT_THROW(make_draft_model(target, 0, o), InputError);
}

TEST(DraftModel, KeptSoftmaxLayersBeyondTheCutAreDropped) {
  ModelConfig c = lt::speculative_tiny_config();
  c.num_layers = 4;
  c.attention = {{"preset", "aug"}, {"options", {{"group_size", 8}}}, {"keep_softmax_layers", {0, 3}}};
  const ModelConfig d = draft_model_config(c, 2);
  EXPECT_EQ(d.num_layers, 2);
  EXPECT_EQ(d.attention["keep_softmax_layers"], nlohmann::json::array({0}));
}

TEST(DraftModel, OnPolicySamplesKeepThePromptAndAreReproducible) {
  const LlamaModel m = lt::speculative_tiny_model("aug", 10, 32);
  const Tensor prompts = lt::random_ids(3, 5, 32, 4);
  const SamplingConfig s{1.0, 0, 1.0, 0};
  const Tensor a = trainer::sample_on_policy(m, prompts, 6, s, Philox(8));
  const Tensor b = trainer::sample_on_policy(m, prompts, 6, s, Philox(8));
  ASSERT_EQ(a.shape(), (Shape{3, 11}));
  EXPECT_EQ(a.to_vector<int32_t>(), b.to_vector<int32_t>());
  EXPECT_EQ(a.slice(1, 0, 5).contiguous().to_vector<int32_t>(), prompts.to_vector<int32_t>());
  for (int32_t x : a.to_vector<int32_t>()) EXPECT_TRUE(x >= 0 && x < 32);
  EXPECT_NE(trainer::sample_on_policy(m, prompts, 6, s, Philox(9)).to_vector<int32_t>(), a.to_vector<int32_t>());
}

// ---- checkpoints ----

std::string temp_h5(const std::string& name) { return ::testing::TempDir() + "/linspec_draft_" + name + ".h5"; }

TEST(DraftCheckpoints, HeadsAndDraftModelRoundTrip) {
  const LlamaModel m = lt::speculative_tiny_model("aug", 12, 32);
  DraftHeadsConfig cfg;
  cfg.count = 3;
  cfg.blocks = 2;
  DraftHeads heads = DraftHeads::init_from(m, cfg, false);
  Philox rng(1);
  for (const auto& [name, t] : heads.tensors()) lt::fill_normal(t, rng, 0.1);
  LlamaOptions o;
  o.requires_grad = false;
  const LlamaModel draft = make_draft_model(m, 1, o);
  const std::string path = temp_h5("roundtrip");
  write_hdf5_atomically(path, [&](H5Handle f) {
    write_draft_heads(f, heads);
    write_draft_model(f, draft);
  });
  ASSERT_TRUE(has_draft_heads(path));
  ASSERT_TRUE(has_draft_model(path));
  const DraftHeads back = load_draft_heads(path, m);
  EXPECT_EQ(back.config().count, 3);
  EXPECT_EQ(back.config().blocks, 2);
  const Tensor h = m.forward_hidden(lt::random_ids(1, 5, 32, 2));
  for (int64_t k = 1; k <= 3; ++k) EXPECT_EQ(back.logits(k, h).to_vector<float>(), heads.logits(k, h).to_vector<float>());
  // Batched evaluation of every head equals head by head (a shared projection runs as one GEMM).
  cfg.shared_projection = true;
  DraftHeads shared = DraftHeads::init_from(m, cfg, false);
  for (const auto& [name, t] : shared.tensors()) lt::fill_normal(t, rng, 0.1);
  for (const DraftHeads* hs : {&heads, &shared}) {
    const auto all = hs->all_logits(h, 2);
    ASSERT_EQ(all.size(), 2u);
    for (int64_t k = 1; k <= 2; ++k) EXPECT_LT(lt::max_rel_err(all[k - 1], hs->logits(k, h)), 1e-5) << "head " << k;
  }
  const LlamaModel dback = load_draft_model(path, o);
  const Tensor ids = lt::random_ids(1, 12, 32, 5);
  EXPECT_EQ(dback.forward(ids).to_vector<float>(), draft.forward(ids).to_vector<float>());
}

TEST(DraftCheckpoints, MissingOrMismatchedHeadsAreInputErrors) {
  const LlamaModel m = lt::speculative_tiny_model("softmax", 13, 32);
  const std::string empty = temp_h5("empty");
  write_hdf5_atomically(empty, [](H5Handle) {});
  EXPECT_FALSE(has_draft_heads(empty));
  EXPECT_THROW(load_draft_heads(empty, m), InputError);
  EXPECT_THROW(load_draft_model(empty), InputError);
  // Heads stored for a wider model: the shape error names the tensor.
  const LlamaModel wide = lt::speculative_tiny_model("softmax", 13, 40);
  const std::string path = temp_h5("wide");
  write_hdf5_atomically(path, [&](H5Handle f) { write_draft_heads(f, DraftHeads::init_from(wide, {}, false)); });
  try {
    load_draft_heads(path, m);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("proj.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_draft_heads("/nonexistent/x.h5", m), InputError);
}

}  // namespace
}  // namespace linspec
