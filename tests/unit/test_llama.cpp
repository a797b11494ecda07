// LlamaModel on a tiny random config: the incremental decode reproduces the parallel forward, gradients of
// the full model match central differences (f64), recomputation does not change gradients, and loading
// from a tensor map is strict about names and shapes.
#include <gtest/gtest.h>

#include <map>

#include "core/autograd.h"
#include "core/ops.h"
#include "llama_test_util.h"
#include "model/llama.h"

namespace linspec {
namespace {
using testing::max_rel_err;
using testing::random_ids;
using testing::tiny_llama_config;

LlamaOptions opts(DType dtype, bool requires_grad = false) {
  LlamaOptions o;
  o.dtype = dtype;
  o.requires_grad = requires_grad;
  return o;
}

// Prefill `prefill` tokens at once, then the rest one token at a time; logits concatenated along T.
Tensor incremental_logits(const LlamaModel& m, const Tensor& ids, int64_t prefill) {
  const int64_t B = ids.size(0), T = ids.size(1);
  DecodeState state = m.new_decode_state(B, T);
  std::vector<Tensor> parts{m.decode(state, ids.slice(1, 0, prefill).contiguous())};
  for (int64_t t = prefill; t < T; ++t) parts.push_back(m.decode(state, ids.slice(1, t, t + 1).contiguous()));
  EXPECT_EQ(state.position(), T);
  NoGradGuard g;
  return ops::concat(parts, 1);
}

void check_incremental_matches_parallel(DType dtype, double tol) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 7, opts(dtype));
  testing::randomize_biases(m, 8);
  const Tensor ids = random_ids(2, 13, 53, 9);
  Tensor parallel;
  {
    NoGradGuard g;
    parallel = m.forward(ids);
  }
  ASSERT_EQ(parallel.shape(), (Shape{2, 13, 53}));
  for (int64_t prefill : {1, 5, 13}) {
    const Tensor inc = incremental_logits(m, ids, prefill);
    EXPECT_LT(max_rel_err(inc, parallel), tol) << "prefill " << prefill;
  }
}

TEST(Llama, IncrementalDecodeEqualsParallelF32) { check_incremental_matches_parallel(DType::F32, 1e-5); }
TEST(Llama, IncrementalDecodeEqualsParallelF64) { check_incremental_matches_parallel(DType::F64, 1e-12); }

TEST(Llama, UntiedNoBiasDecodeEqualsParallel) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(false, false), 3, opts(DType::F32));
  EXPECT_TRUE(m.parameters().contains("lm_head.weight"));
  EXPECT_FALSE(m.parameters().contains("model.layers.0.self_attn.q_proj.bias"));
  const Tensor ids = random_ids(1, 9, 53, 4);
  NoGradGuard g;
  EXPECT_LT(max_rel_err(incremental_logits(m, ids, 3), m.forward(ids)), 1e-5);
}

TEST(Llama, DecodeLastOnlyAndCacheOverflow) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 5, opts(DType::F32));
  const Tensor ids = random_ids(1, 6, 53, 6);
  DecodeState state = m.new_decode_state(1, 6);
  const Tensor last = m.decode(state, ids, true);
  ASSERT_EQ(last.shape(), (Shape{1, 1, 53}));
  NoGradGuard g;
  const Tensor full = m.forward(ids);
  EXPECT_LT(max_rel_err(last, full.slice(1, 5, 6).contiguous()), 1e-5);
  EXPECT_GT(state.bytes(), 0);
  EXPECT_THROW(m.decode(state, random_ids(1, 1, 53, 1)), InputError);  // capacity 6 is full
}

// Loss of the whole model: next-token cross-entropy of ids[:, :-1] -> ids[:, 1:].
Tensor lm_loss(const LlamaModel& m, const Tensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1), V = m.config().vocab_size;
  const Tensor logits = m.forward(ids.slice(1, 0, T - 1).contiguous());
  const Tensor targets = ids.slice(1, 1, T).contiguous().reshape({B * (T - 1)});
  return ops::cross_entropy(ops::reshape(logits, {B * (T - 1), V}), targets);
}

TEST(Llama, GradientOfFullModelMatchesCentralDifferences) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 11, opts(DType::F64, true));
  testing::randomize_biases(m, 12);
  // Norm weights of 1 would hide errors that scale with the weight; perturb them.
  for (const auto& [name, t] : m.parameters().entries())
    if (name.find("norm") != std::string::npos) {
      double* p = t.data<double>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] += 0.05 * std::sin(3.0 * i + name.size());
    }
  const Tensor ids = random_ids(2, 7, 53, 13);
  backward(lm_loss(m, ids));

  const std::vector<std::string> names = {
      "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.bias", "model.layers.0.self_attn.v_proj.weight",
      "model.layers.1.self_attn.o_proj.weight", "model.layers.1.post_attention_layernorm.weight",
      "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
      "model.norm.weight"};
  Philox pick(14);
  for (const auto& name : names) {
    const Tensor p = m.parameters().get(name);
    ASSERT_TRUE(p.grad().defined()) << name;
    const Tensor grad = p.grad();
    double* w = p.data<double>();
    for (int trial = 0; trial < 4; ++trial) {
      const int64_t i = static_cast<int64_t>(pick.below(p.numel()));
      const double h = 1e-5, saved = w[i];
      double up, down;
      {
        NoGradGuard g;
        w[i] = saved + h;
        up = lm_loss(m, ids).item();
        w[i] = saved - h;
        down = lm_loss(m, ids).item();
        w[i] = saved;
      }
      const double numeric = (up - down) / (2 * h), analytic = grad.data<double>()[i];
      EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::abs(numeric)) << name << "[" << i << "]";
    }
  }
}

// Gradients of every parameter after one backward.
std::map<std::string, std::vector<float>> grads_of(const LlamaModel& m, const Tensor& ids) {
  for (auto [name, t] : m.named_parameters()) t.zero_grad();
  backward(lm_loss(m, ids));
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : m.named_parameters()) out[name] = t.grad().to_vector<float>();
  return out;
}

TEST(Llama, RecomputeGivesIdenticalGradients) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 21, opts(DType::F32, true));
  testing::randomize_biases(m, 22);
  const Tensor ids = random_ids(2, 9, 53, 23);
  const auto plain = grads_of(m, ids);
  LlamaOptions o = m.options();
  o.recompute = true;
  m.set_options(o);
  const auto recomputed = grads_of(m, ids);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (const auto& [name, g] : plain) EXPECT_EQ(g, recomputed.at(name)) << name;
}

TEST(Llama, Bf16MatmulsStayCloseToF32) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 31, opts(DType::F32));
  const Tensor ids = random_ids(2, 8, 53, 32);
  NoGradGuard g;
  const Tensor f32 = m.forward(ids);
  LlamaOptions o = m.options();
  o.precision = ops::MatmulPrecision::BF16;
  m.set_options(o);
  const Tensor bf16 = m.forward(ids);
  const double err = max_rel_err(bf16, f32);
  EXPECT_LT(err, 3e-2);
  EXPECT_GT(err, 0.0);  // the option really changed the arithmetic
}

std::map<std::string, Tensor> tensors_of(const LlamaModel& m, bool checkpoint_names) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.parameters().entries())
    out[checkpoint_names && name.rfind("model.", 0) == 0 ? name.substr(6) : name] = t.clone();
  return out;
}

TEST(Llama, FromTensorsReproducesTheSourceModel) {
  LlamaModel src = LlamaModel::random(tiny_llama_config(), 41, opts(DType::F32));
  testing::randomize_biases(src, 42);
  const Tensor ids = random_ids(1, 7, 53, 43);
  NoGradGuard g;
  const Tensor want = src.forward(ids);
  for (bool ckpt_names : {false, true}) {
    LlamaModel copy = LlamaModel::from_tensors(src.config(), tensors_of(src, ckpt_names), opts(DType::F32));
    EXPECT_EQ(max_rel_err(copy.forward(ids), want), 0.0);
  }
  // f64 conversion on load.
  LlamaModel wide = LlamaModel::from_tensors(src.config(), tensors_of(src, false), opts(DType::F64));
  EXPECT_LT(max_rel_err(wide.forward(ids), want), 1e-5);
}

TEST(Llama, FromTensorsNamesTheMissingOrMisShapedTensor) {
  LlamaModel src = LlamaModel::random(tiny_llama_config(), 51, opts(DType::F32));
  auto expect_error = [&](const std::map<std::string, Tensor>& t, const std::string& needle) {
    try {
      LlamaModel::from_tensors(src.config(), t, opts(DType::F32), "tiny.h5");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("tiny.h5"), std::string::npos) << e.what();
    }
  };
  auto missing = tensors_of(src, false);
  missing.erase("model.layers.1.mlp.up_proj.weight");
  expect_error(missing, "model.layers.1.mlp.up_proj.weight");
  auto wrong = tensors_of(src, false);
  wrong["model.layers.0.self_attn.k_proj.weight"] = Tensor::zeros({12, 26});
  expect_error(wrong, "model.layers.0.self_attn.k_proj.weight");
  // Untied config needs lm_head.weight.
  ModelConfig untied = src.config();
  untied.tie_word_embeddings = false;
  EXPECT_THROW(LlamaModel::from_tensors(untied, tensors_of(src, false)), InputError);
}

TEST(Llama, RandomInitIsSeededAndScaled) {
  LlamaModel a = LlamaModel::random(tiny_llama_config(), 61, opts(DType::F32));
  LlamaModel b = LlamaModel::random(tiny_llama_config(), 61, opts(DType::F32));
  LlamaModel c = LlamaModel::random(tiny_llama_config(), 62, opts(DType::F32));
  const std::string w = "model.layers.0.mlp.gate_proj.weight";
  EXPECT_EQ(a.parameters().get(w).to_vector<float>(), b.parameters().get(w).to_vector<float>());
  EXPECT_NE(a.parameters().get(w).to_vector<float>(), c.parameters().get(w).to_vector<float>());
  const auto e = a.parameters().get("model.embed_tokens.weight").to_vector<double>();
  double s = 0, s2 = 0;
  for (double x : e) s += x, s2 += x * x;
  const double n = static_cast<double>(e.size()), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.003);
  EXPECT_NEAR(sd, 0.02, 0.002);
  EXPECT_EQ(a.parameters().get("model.norm.weight").to_vector<float>(), std::vector<float>(27, 1.f));
}

// A mixer that wraps softmax attention but halves its output: proves set_attention routes both forms.
class HalfSoftmax : public SoftmaxAttention {
 public:
  using SoftmaxAttention::SoftmaxAttention;
  std::string kind() const override { return "half"; }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const override {
    return ops::scale(SoftmaxAttention::forward(q, k, v), 0.5);
  }
  Tensor step(AttentionState& s, const Tensor& q, const Tensor& k, const Tensor& v) const override {
    return ops::scale(SoftmaxAttention::step(s, q, k, v), 0.5);
  }
};

TEST(Llama, PluggableMixerIsUsedByBothForms) {
  LlamaModel m = LlamaModel::random(tiny_llama_config(), 71, opts(DType::F32));
  const Tensor ids = random_ids(1, 8, 53, 72);
  NoGradGuard g;
  const Tensor before = m.forward(ids);
  m.set_attention(1, std::make_unique<HalfSoftmax>(AttentionShape{6, 2, 6}));
  EXPECT_EQ(m.layer(1).mixer->kind(), "half");
  const Tensor after = m.forward(ids);
  EXPECT_GT(max_rel_err(after, before), 1e-4);
  EXPECT_LT(max_rel_err(incremental_logits(m, ids, 2), after), 1e-5);
  EXPECT_ANY_THROW(m.set_attention(0, std::make_unique<HalfSoftmax>(AttentionShape{6, 3, 6})));
}

}  // namespace
}  // namespace linspec
