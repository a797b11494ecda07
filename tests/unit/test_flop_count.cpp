// The training FLOP model (trainer/flop_count.h) against an independent count: the GEMMs a real TrainStep runs on the
// tiny model, recorded by the GEMM probe of the op profile (core/gemm_observer.h, model/op_profile.h) with their
// shapes and roles, per region. For four workloads — full fine-tune, LoRA + kd, attention transfer, heads only — the
// model's forward and backward GEMM FLOPs per family must equal what ran. The same probe proves what a frozen
// tensor costs: no weight-gradient GEMM for a frozen weight (LoRA's base weights, the tied LM head, the frozen
// backbone and the shared projection of heads-only training), and a kd teacher that records nothing on the tape.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "model/op_profile.h"
#include "tests/unit/fake_communicator.h"
#include "tests/unit/llama_test_util.h"
#include "trainer/flop_count.h"
#include "trainer/train_step.h"
#include "trainer/trainable.h"

namespace linspec {
namespace {

using namespace trainer;

constexpr int kBatch = 2, kSeq = 12;
constexpr int64_t kRank = 2;

enum class Workload { FullFinetune, LoraKd, AttentionTransfer, HeadsOnly };

TrainSetup make_setup(Workload w) {
  const ModelConfig c = testing::tiny_llama_config();
  LlamaOptions o;
  TrainSetup s;
  s.model = std::make_unique<LlamaModel>(LlamaModel::random(c, 5, o));
  if (w != Workload::FullFinetune) {
    AttentionSpec spec;
    spec.preset = "aug";
    spec.options = {{"group_size", "4"}, {"conv_taps", "3"}};
    s.model->set_attention_spec(spec);
  }
  std::vector<std::string> trainable;
  switch (w) {
    case Workload::FullFinetune:
      trainable = {"all"};
      break;
    case Workload::LoraKd: {
      LlamaOptions t = o;
      t.requires_grad = false;
      s.teacher = std::make_unique<LlamaModel>(LlamaModel::random(c, 5, t));
      LoraConfig lc;
      lc.rank = kRank;
      lc.targets = {"q", "v", "o", "up", "down"};
      s.lora = std::make_unique<LoraSet>(c, lc, 7);
      s.objectives = {1.0, 0.0, 0.5, 2.0};  // ce, attention transfer, kd, temperature
      trainable = {"lora", "norms", "attention_new"};
      break;
    }
    case Workload::AttentionTransfer:
      s.objectives = {0.0, 1.0, 0.0, 1.0};
      trainable = {"attention_new"};
      break;
    case Workload::HeadsOnly: {
      DraftHeadsConfig hc;
      hc.count = 2;
      hc.shared_projection = true;
      s.drafts.heads = std::make_unique<DraftHeads>(DraftHeads::init_from(*s.model, hc, true));
      s.drafts.settings.heads_weight = 1.0;
      s.objectives = {0.0, 0.0, 0.0, 1.0};
      break;
    }
  }
  s.student = std::make_unique<Student>(*s.model, s.lora.get(),
                                        trainable.empty() ? std::set<std::string>{} : select_trainable(*s.model, trainable),
                                        StudentOptions{});
  return s;
}

// The profile of one TrainStep (grad_accum micro-batches) on random tokens.
OpProfile profile_step(TrainSetup& setup, int grad_accum) {
  ExperimentConfig cfg;
  cfg.data.seq_len = kSeq;
  cfg.train.micro_batch = kBatch;
  cfg.train.grad_accum = grad_accum;
  testing::SingleRankCommunicator comm;
  TrainStep step(cfg, comm, comm, setup);
  Philox rng(11);
  uint64_t seed = 100;
  auto next = [&] { return testing::random_ids(kBatch, kSeq + 1, setup.model->config().vocab_size, seed++); };
  OpProfile prof;
  {
    OpProfile::Scope scope(&prof);
    step.run(next, rng, 1e-3, 0);
  }
  return prof;
}

// The flop_count family of a profile region: its outermost name ("teacher/gemm.qkv" -> "teacher").
std::string family(const std::string& region) { return region.substr(0, region.find('/')); }

struct Counted {
  double forward = 0, backward = 0;
};

void expect_model_matches_gemms(Workload w, int grad_accum) {
  TrainSetup setup = make_setup(w);
  const OpProfile prof = profile_step(setup, grad_accum);
  const StepFlops model = count_step_flops(setup, kBatch, kSeq);
  EXPECT_EQ(model.tokens, kBatch * kSeq);
  std::map<std::string, Counted> counted;
  for (const auto& [key, g] : prof.gemms()) {
    Counted& c = counted[family(key.region)];
    (key.role == GemmRole::Forward ? c.forward : c.backward) += g.flops;
  }
  EXPECT_EQ(counted.count("(outside regions)"), 0u) << "a GEMM ran outside every profile region";
  std::set<std::string> names;
  for (const auto& [n, c] : counted) names.insert(n);
  for (const auto& [n, f] : model.families)
    if (f.gemm_forward + f.gemm_backward > 0) names.insert(n);
  ASSERT_FALSE(names.empty());
  for (const std::string& n : names) {
    const auto it = model.families.find(n);
    const double mf = it == model.families.end() ? 0 : it->second.gemm_forward * grad_accum;
    const double mb = it == model.families.end() ? 0 : it->second.gemm_backward * grad_accum;
    EXPECT_DOUBLE_EQ(counted[n].forward, mf) << n << " forward GEMM FLOPs";
    EXPECT_DOUBLE_EQ(counted[n].backward, mb) << n << " backward GEMM FLOPs";
  }
}

TEST(FlopCount, FullFinetuneMatchesTheGemmsOfAStep) { expect_model_matches_gemms(Workload::FullFinetune, 2); }
TEST(FlopCount, LoraKdMatchesTheGemmsOfAStep) { expect_model_matches_gemms(Workload::LoraKd, 1); }
TEST(FlopCount, AttentionTransferMatchesTheGemmsOfAStep) { expect_model_matches_gemms(Workload::AttentionTransfer, 1); }
TEST(FlopCount, HeadsOnlyMatchesTheGemmsOfAStep) { expect_model_matches_gemms(Workload::HeadsOnly, 1); }

// A full fine-tune runs backward ≈ 2× forward in the projections; LoRA's frozen base weights only dX (≈ 1×);
// attention transfer needs no LM head; heads only never run the backbone's backward.
TEST(FlopCount, FrozenWeightsCostNoWeightGradient) {
  auto fam = [](const StepFlops& f, const std::string& n) {
    const auto it = f.families.find(n);
    return it == f.families.end() ? FamilyFlops{} : it->second;
  };
  TrainSetup full = make_setup(Workload::FullFinetune), lora = make_setup(Workload::LoraKd),
             at = make_setup(Workload::AttentionTransfer), heads = make_setup(Workload::HeadsOnly);
  const StepFlops ff = count_step_flops(full, kBatch, kSeq), lf = count_step_flops(lora, kBatch, kSeq),
                  af = count_step_flops(at, kBatch, kSeq), hf = count_step_flops(heads, kBatch, kSeq);
  const FamilyFlops mlp_full = fam(ff, "gemm.mlp");
  // Layer 0's inputs come from a trainable embedding: dX and dW everywhere.
  EXPECT_DOUBLE_EQ(mlp_full.gemm_backward, 2 * mlp_full.gemm_forward);
  EXPECT_GT(fam(lf, "teacher").gemm_forward, 0);
  EXPECT_EQ(fam(lf, "teacher").gemm_backward, 0);
  EXPECT_EQ(fam(af, "gemm.lm_head").total(), 0);
  EXPECT_EQ(fam(hf, "gemm.qkv").gemm_backward + fam(hf, "gemm.mlp").gemm_backward + fam(hf, "attention").backward(), 0);
}

// The probe's view of the same: which weight-gradient (grad_b) GEMMs a step runs, by the shape of the gradient.
std::set<std::pair<int64_t, int64_t>> weight_gradient_shapes(const OpProfile& prof, const std::string& region_prefix) {
  std::set<std::pair<int64_t, int64_t>> out;
  for (const auto& [key, g] : prof.gemms())
    if (key.role == GemmRole::GradB && key.region.rfind(region_prefix, 0) == 0) out.insert({key.m, key.n});
  return out;
}

TEST(FlopCount, LoraStepRunsNoWeightGradientForItsBaseWeights) {
  TrainSetup setup = make_setup(Workload::LoraKd);
  const OpProfile prof = profile_step(setup, 1);
  int64_t lora_grads = 0;
  for (const char* region : {"gemm.qkv", "gemm.o", "gemm.mlp", "gemm.lm_head"})
    for (const auto& [m, n] : weight_gradient_shapes(prof, region)) {
      // Only A [r, in] and B [out, r] get weight gradients; a base weight [out, in] (and the tied, frozen LM head)
      // would show as a gradient without a rank-sized side.
      EXPECT_TRUE(m == kRank || n == kRank) << region << ": a weight gradient " << m << "x" << n;
      ++lora_grads;
    }
  EXPECT_GT(lora_grads, 0) << "the adapters must get their gradients";
}

TEST(FlopCount, KdTeacherRecordsNoTape) {
  TrainSetup setup = make_setup(Workload::LoraKd);
  const OpProfile prof = profile_step(setup, 1);
  int64_t teacher_regions = 0;
  for (const auto& [region, t] : prof.times()) {
    if (family(region) != "teacher") continue;
    ++teacher_regions;
    EXPECT_EQ(t.taped_calls, 0) << region << " ran with grad mode on";
    EXPECT_EQ(t.backward_s, 0) << region;
    EXPECT_EQ(t.gemm_backward_flops, 0) << region;
  }
  EXPECT_GT(teacher_regions, 1) << "the teacher's forward should show as its own regions";
  // The student's regions, by contrast, are taped.
  EXPECT_GT(prof.times().at("gemm.qkv").taped_calls, 0);
}

TEST(FlopCount, HeadsOnlyStepRunsNoBackboneOrProjectionWeightGradient) {
  TrainSetup setup = make_setup(Workload::HeadsOnly);
  const OpProfile prof = profile_step(setup, 1);
  const int64_t D = setup.model->config().hidden_size;
  for (const auto& [key, g] : prof.gemms()) {
    if (family(key.region) != "draft_heads") {
      EXPECT_EQ(key.role, GemmRole::Forward) << key.region << ": the frozen backbone ran a backward GEMM";
      continue;
    }
    // The heads' residual blocks [D, D] train; their shared projection is the frozen LM head [V, D].
    if (key.role == GemmRole::GradB) EXPECT_TRUE(key.m == D && key.n == D) << key.m << "x" << key.n;
  }
  EXPECT_FALSE(weight_gradient_shapes(prof, "draft_heads").empty());
}

// Regions nest without double counting: their own times add up to at most the step's wall time.
TEST(FlopCount, ProfileRegionsDoNotOverlap) {
  TrainSetup setup = make_setup(Workload::LoraKd);
  const double t0 = seconds_now();
  const OpProfile prof = profile_step(setup, 1);
  const double wall = seconds_now() - t0;
  double sum = 0;
  for (const auto& [region, t] : prof.times()) {
    EXPECT_GE(t.forward_s, 0) << region;
    EXPECT_GE(t.backward_s, 0) << region;
    sum += t.forward_s + t.backward_s;
  }
  EXPECT_LE(sum, wall);
  EXPECT_TRUE(prof.times().count("teacher/gemm.qkv")) << "nested regions are named outer/inner";
}

}  // namespace
}  // namespace linspec
