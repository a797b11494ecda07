// LoRA adapters (model/lora.h) and the Student forward that applies them (trainer/student.h):
//  - a fresh adapter (B = 0) leaves the forward bit-identical to LlamaModel::forward;
//  - training through the adapters leaves every base weight bit-identical and gives frozen tensors no gradient;
//  - the merged export (W + α/r·BA, what eval/export load) matches the unmerged forward;
//  - gradient checks of the adapter in f64, with and without dropout; the init follows Kaiming-uniform(a=√5).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/autograd.h"
#include "model/llama_tensors.h"
#include "model/lora.h"
#include "tests/support/gradcheck.h"
#include "tests/unit/llama_test_util.h"
#include "trainer/adamw.h"
#include "trainer/student.h"

namespace linspec {
namespace {

using testing::max_rel_err;
using testing::random_ids;
using testing::tiny_llama_config;

LlamaModel tiny_model(uint64_t seed = 3) {
  LlamaOptions o;
  o.precision = ops::MatmulPrecision::F32;
  LlamaModel m = LlamaModel::random(tiny_llama_config(), seed, o);
  testing::randomize_biases(m, seed + 1);
  return m;
}

LoraConfig all_targets(double dropout = 0.0) {
  LoraConfig c;
  c.rank = 3;
  c.alpha = 6;
  c.dropout = dropout;
  c.targets = {"q", "k", "v", "o", "gate", "up", "down"};
  return c;
}

Tensor student_logits(const trainer::Student& s, const Tensor& ids) {
  NoGradGuard ng;
  return s.lm_head(s.forward_hidden(ids, LoraContext{}).hidden);
}

// A few AdamW steps of next-token CE through the Student; returns the losses.
std::vector<double> train_steps(const trainer::Student& s, int steps, double lr) {
  std::vector<ParamGroup> groups(1);
  for (const auto& [name, t] : s.trainable_parameters()) groups[0].params.push_back(t), groups[0].names.push_back(name);
  AdamWConfig ac;
  ac.lr = lr;
  AdamW opt(groups, ac);
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    const Tensor all = random_ids(2, 13, s.base().config().vocab_size, 100 + i);
    const Tensor in = all.slice(1, 0, 12).contiguous(), tg = all.slice(1, 1, 13).contiguous();
    opt.zero_grad();
    const Tensor logits = s.lm_head(s.forward_hidden(in, LoraContext{true, static_cast<uint64_t>(i)}).hidden);
    const Tensor loss = ops::cross_entropy(ops::reshape(logits, {24, logits.size(-1)}), tg.reshape({24}));
    backward(loss);
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

TEST(Lora, FreshAdapterLeavesTheForwardBitIdentical) {
  const LlamaModel m = tiny_model();
  const LoraSet lora(m.config(), all_targets(), 11);
  const trainer::Student s(m, &lora, {}, {});
  const Tensor ids = random_ids(2, 9, m.config().vocab_size, 5);
  Tensor expected;
  {
    NoGradGuard ng;
    expected = m.forward(ids);
  }
  const auto a = student_logits(s, ids).to_vector<float>(), b = expected.to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;
}

TEST(Lora, TrainingLeavesBaseWeightsBitIdenticalAndFrozenWithoutGrad) {
  const LlamaModel m = tiny_model();
  std::map<std::string, Tensor> before;
  for (const auto& [name, t] : m.named_parameters()) before[name] = t.clone();
  const LoraSet lora(m.config(), all_targets(0.1), 11);
  const trainer::Student s(m, &lora, {}, {});
  for (const auto& [name, t] : s.trainable_parameters()) EXPECT_TRUE(is_lora_tensor_name(name)) << name;
  EXPECT_EQ(s.trainable_parameters().size(), 2u * 7u * m.config().num_layers);

  const auto losses = train_steps(s, 8, 1e-2);
  EXPECT_LT(losses.back(), losses.front());
  for (const auto& [name, t] : m.named_parameters()) {
    const Tensor& old = before.at(name);
    ASSERT_EQ(0, std::memcmp(old.raw_data(), t.raw_data(), t.nbytes())) << name << " changed";
    EXPECT_FALSE(t.grad().defined()) << name << " (frozen) got a gradient";
  }
  bool b_moved = false;
  for (const auto& [name, t] : lora.named_parameters()) {
    EXPECT_TRUE(t.grad().defined()) << name;
    if (name.back() == 'B')
      for (float x : t.to_vector<float>()) b_moved = b_moved || x != 0.0f;
  }
  EXPECT_TRUE(b_moved);
}

TEST(Lora, MergedExportMatchesTheUnmergedForward) {
  const LlamaModel m = tiny_model();
  const LoraSet lora(m.config(), all_targets(), 11);
  const trainer::Student s(m, &lora, {}, {});
  train_steps(s, 5, 3e-2);

  // What a snapshot holds, merged as eval / export do.
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : m.checkpoint_tensors()) tensors[name] = t.clone();
  for (const auto& [name, t] : lora.named_parameters()) tensors[linspec_tensor_name(name)] = t.clone();
  EXPECT_EQ(merge_lora_tensors(tensors, lora.attrs_json(), "test"), 7 * m.config().num_layers);
  for (const auto& [name, t] : tensors) EXPECT_FALSE(is_lora_tensor_name(name)) << name;
  const LlamaModel merged = LlamaModel::from_tensors(m.config(), tensors, m.options(), "merged");

  const Tensor ids = random_ids(2, 10, m.config().vocab_size, 77);
  Tensor got;
  {
    NoGradGuard ng;
    got = merged.forward(ids);
  }
  const Tensor want = student_logits(s, ids);
  EXPECT_LT(max_rel_err(got, want), 1e-5);
  // The adapters matter: without them the output is clearly different.
  Tensor base;
  {
    NoGradGuard ng;
    base = m.forward(ids);
  }
  EXPECT_GT(max_rel_err(base, want), 1e-3);
}

TEST(Lora, MergeReportsBrokenAdapters) {
  std::map<std::string, Tensor> t;
  t["layers.0.self_attn.q_proj.weight"] = Tensor::zeros({4, 5});
  t["layers.0.self_attn.q_proj.lora_A"] = Tensor::zeros({2, 5});
  try {
    merge_lora_tensors(t, R"({"rank":2,"alpha":4})", "snap.h5");
    FAIL() << "no error for a missing lora_B";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("snap.h5"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("q_proj.lora_B"), std::string::npos);
  }
  t["layers.0.self_attn.q_proj.lora_B"] = Tensor::zeros({3, 2});  // 3 rows for a 4-row weight
  EXPECT_THROW(merge_lora_tensors(t, R"({"rank":2,"alpha":4})", "snap.h5"), InputError);
  t["layers.0.self_attn.q_proj.lora_B"] = Tensor::full({4, 2}, 1.0);
  t["layers.0.self_attn.q_proj.lora_A"] = Tensor::full({2, 5}, 0.5);
  EXPECT_THROW(merge_lora_tensors(t, "", "snap.h5"), InputError);  // no scale
  EXPECT_EQ(merge_lora_tensors(t, R"({"rank":2,"alpha":4})", "snap.h5"), 1);
  for (float x : t.at("layers.0.self_attn.q_proj.weight").to_vector<float>()) EXPECT_FLOAT_EQ(x, 2.0f * (2 * 0.5f));
}

TEST(Lora, KaimingUniformInitAndZeroB) {
  LoraConfig c;
  c.rank = 8;
  const LoraAdapter a(400, 30, c, 5, 0, DType::F32), b(400, 30, c, 5, 1, DType::F32), a2(400, 30, c, 5, 0, DType::F32);
  const auto va = a.A().to_vector<float>(), vb = b.A().to_vector<float>(), va2 = a2.A().to_vector<float>();
  const double bound = 1.0 / std::sqrt(400.0);
  double mean = 0, sq = 0;
  for (float x : va) {
    ASSERT_LE(std::abs(x), bound);
    mean += x, sq += static_cast<double>(x) * x;
  }
  mean /= va.size();
  sq /= va.size();
  EXPECT_LT(std::abs(mean), 0.1 * bound);
  EXPECT_NEAR(sq, bound * bound / 3.0, 0.1 * bound * bound / 3.0);  // variance of U(±b) is b²/3
  EXPECT_EQ(va, va2);  // reproducible from (seed, stream)
  EXPECT_NE(va, vb);   // streams differ
  for (float x : a.B().to_vector<float>()) ASSERT_EQ(x, 0.0f);
  EXPECT_DOUBLE_EQ(a.scale(), 2.0);
}

testing::GradCase lora_case(double dropout) {
  testing::GradCase c;
  c.name = dropout > 0 ? "lora_linear_dropout" : "lora_linear";
  c.input_shapes = {{2, 3, 5}, {2, 5}, {4, 2}, {4, 5}, {4}};
  c.differentiable = {true, true, true, false, false};  // W and b are frozen
  c.fn = [dropout](const std::vector<Tensor>& in) {
    const LoraAdapter a(in[1], in[2], 1.5, dropout, 9);
    const Tensor y = ops::linear(in[0], in[3], in[4]);
    return a.apply(in[0], y, LoraContext{true, 42});
  };
  return c;
}

TEST(Lora, GradcheckF64) {
  for (double p : {0.0, 0.4}) {
    const auto r = testing::gradcheck(lora_case(p));
    EXPECT_LT(r.max_rel_err, 1e-7) << "dropout " << p << ": " << r.worst;
  }
}

TEST(Lora, DropoutOnlyWhenTrainingAndDeterministicPerKey) {
  Philox rng(1);
  const Tensor x = testing::random_normal({4, 6}, DType::F64, rng), y = Tensor::zeros({3}, DType::F64);
  const Tensor A = testing::random_normal({2, 6}, DType::F64, rng), B = testing::random_normal({3, 2}, DType::F64, rng);
  const LoraAdapter a(A, B, 1.0, 0.5, 0);
  NoGradGuard ng;
  const Tensor y3 = Tensor::zeros({4, 3}, DType::F64);
  const auto eval = a.apply(x, y3, LoraContext{false, 1}).to_vector<double>();
  const auto plain = ops::linear(ops::linear(x, A), B).to_vector<double>();
  for (size_t i = 0; i < eval.size(); ++i) EXPECT_DOUBLE_EQ(eval[i], plain[i]);
  const auto t1 = a.apply(x, y3, LoraContext{true, 1}).to_vector<double>();
  const auto t1b = a.apply(x, y3, LoraContext{true, 1}).to_vector<double>();
  const auto t2 = a.apply(x, y3, LoraContext{true, 2}).to_vector<double>();
  EXPECT_EQ(t1, t1b);
  EXPECT_NE(t1, t2);
  EXPECT_NE(t1, eval);
}

}  // namespace
}  // namespace linspec
