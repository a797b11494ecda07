// The EAGLE-style feature draft (model/feature_draft.h): its decoding form (absorbing pairs into a state, several
// sequences packed in one pass) reproduces its parallel forward; the training loss's gradients match central
// differences; a few AdamW steps lower the held-out KL; /draft/eagle round-trips and bad files are refused by name;
// the reduced vocabulary holds the most frequent ids.
#include <gtest/gtest.h>

#include "core/autograd.h"
#include "core/error.h"
#include "model/feature_draft.h"
#include "model/hdf5_util.h"
#include "llama_test_util.h"
#include "speculative_test_util.h"
#include "trainer/adamw.h"
#include "trainer/draft_objectives.h"

namespace linspec {
namespace {

namespace lt = linspec::testing;

constexpr int64_t kVocab = 32;

FeatureDraft random_draft(const LlamaModel& m, uint64_t seed, std::vector<int32_t> vocab = {}) {
  return lt::random_feature_draft(m, seed, std::move(vocab), 0.2);
}

Tensor random_features(int64_t T, int64_t D, uint64_t seed) {
  Philox rng(seed);
  Tensor f = Tensor::empty({1, T, D}, DType::F32);
  lt::fill_normal(f, rng, 1.0);
  return f;
}

class FeatureDraftForms : public ::testing::TestWithParam<std::string> {};

// Three sequences of 21, 9 and 30 pairs (crossing several aug groups of 8) absorbed in uneven chunks, packed
// together: every row equals the parallel forward's at that position, and packing several sequences changes no bit.
TEST_P(FeatureDraftForms, AbsorbedRowsEqualTheParallelForward) {
  const LlamaModel m = lt::speculative_tiny_model(GetParam(), 3, kVocab);
  const FeatureDraft d = random_draft(m, 4);
  const int64_t D = m.config().hidden_size;
  const std::vector<int64_t> lengths{21, 9, 30};
  std::vector<Tensor> feats, parallel;
  std::vector<std::vector<int32_t>> ids;
  for (size_t s = 0; s < lengths.size(); ++s) {
    feats.push_back(random_features(lengths[s], D, 10 + s));
    ids.push_back(lt::random_ids(1, lengths[s], kVocab, 20 + s).to_vector<int32_t>());
    parallel.push_back(d.forward(feats[s], Tensor::from_vector(ids[s], {1, lengths[s]})).view({lengths[s], D}));
  }
  const std::vector<int64_t> chunks{1, 5, 2, 8, 1, 3, 7, 3};
  std::vector<DecodeState> packed, alone;
  for (size_t s = 0; s < lengths.size(); ++s) packed.push_back(d.new_state(64)), alone.push_back(d.new_state(64));
  std::vector<int64_t> done(lengths.size(), 0);
  for (size_t round = 0; round < chunks.size(); ++round) {
    std::vector<DecodeState*> states;
    std::vector<Tensor> f;
    std::vector<int32_t> x;
    std::vector<int64_t> counts;
    for (size_t s = 0; s < lengths.size(); ++s) {
      const int64_t n = std::min(chunks[(round + s) % chunks.size()], lengths[s] - done[s]);
      if (n == 0) continue;
      states.push_back(&packed[s]);
      f.push_back(feats[s].view({lengths[s], D}).slice(0, done[s], done[s] + n));
      x.insert(x.end(), ids[s].begin() + done[s], ids[s].begin() + done[s] + n);
      counts.push_back(n);
    }
    if (states.empty()) break;
    const Tensor rows = d.absorb(states, ops::concat(f, 0), x, counts);
    int64_t at = 0;
    for (size_t s = 0, j = 0; s < lengths.size(); ++s) {
      if (j >= states.size() || states[j] != &packed[s]) continue;
      const int64_t n = counts[j++];
      const Tensor mine = rows.slice(0, at, at + n);
      const std::vector<int32_t> xs(ids[s].begin() + done[s], ids[s].begin() + done[s] + n);
      const Tensor single = d.absorb({&alone[s]}, f[j - 1].contiguous(), xs, {n});
      EXPECT_EQ(mine.contiguous().to_vector<float>(), single.to_vector<float>()) << "sequence " << s << " round " << round;
      EXPECT_LT(lt::max_rel_err(mine.contiguous(), parallel[s].slice(0, done[s], done[s] + n).contiguous()), 2e-4)
          << "sequence " << s << " at " << done[s];
      at += n;
      done[s] += n;
    }
  }
  for (size_t s = 0; s < lengths.size(); ++s) EXPECT_EQ(done[s], lengths[s]);
}

INSTANTIATE_TEST_SUITE_P(Targets, FeatureDraftForms, ::testing::Values("softmax", "aug"));

// d loss / d θ for fc, a projection of the layer and the final norm against central differences, in f64, with the
// feature-regression and KD terms both on, unrolled to depth 2 (the gradient also flows through the depth-1 predictions).
TEST(FeatureDraftTraining, LossGradientsMatchCentralDifferences) {
  LlamaOptions o;
  o.dtype = DType::F64;
  o.requires_grad = false;
  LlamaModel m = LlamaModel::random(lt::speculative_tiny_config(kVocab), 5, o);
  AttentionSpec spec;
  spec.preset = "aug";
  spec.options = {{"group_size", "4"}};
  m.set_attention_spec(spec);
  FeatureDraft d = FeatureDraft::init_from(m, {}, true);
  Philox rng(6);
  for (const auto& [name, t] : d.named_parameters()) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] += 0.1 * rng.normal();
  }
  const Tensor ids = lt::random_ids(2, 9, kVocab, 7);
  Tensor hidden, logits;
  {
    NoGradGuard g;
    hidden = m.forward_hidden(ids);
    logits = m.lm_head(hidden);
  }
  auto loss = [&] { return trainer::feature_draft_loss(d, hidden, logits, ids, 0.7, /*unroll=*/2).total; };
  const Tensor l = loss();
  backward(l);
  int checked = 0;
  for (const auto& [name, t] : d.named_parameters()) {
    if (name != "fc.weight" && name.find("v_proj") == std::string::npos && name != "model.norm.weight") continue;
    const Tensor g = t.grad();
    ASSERT_TRUE(g.defined()) << name;
    double* p = t.data<double>();
    for (int64_t i : {int64_t{0}, t.numel() / 3, t.numel() - 1}) {
      const double keep = p[i], h = 1e-6;
      p[i] = keep + h;
      const double up = loss().item();
      p[i] = keep - h;
      const double down = loss().item();
      p[i] = keep;
      const double numeric = (up - down) / (2 * h), analytic = g.to_vector<double>()[i];
      EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << name << " element " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 9);
}

TEST(FeatureDraftTraining, AdamWStepsLowerTheHeldOutKL) {
  const LlamaModel m = lt::speculative_tiny_model("aug", 8, kVocab);
  FeatureDraft d = FeatureDraft::init_from(m, {}, true);
  std::vector<Tensor> params;
  for (const auto& [name, t] : d.named_parameters()) params.push_back(t);
  AdamWConfig ac;
  ac.lr = 3e-3;
  AdamW opt({ParamGroup{params, std::nullopt, 1.0, {}}}, ac);
  auto target = [&](const Tensor& ids) {
    NoGradGuard g;
    const Tensor h = m.forward_hidden(ids);
    return std::make_pair(h, m.lm_head(h));
  };
  const Tensor held_out = lt::random_ids(2, 24, kVocab, 99);
  const auto [hh, hl] = target(held_out);
  const auto before = trainer::evaluate_feature_draft(d, hh, hl, held_out);
  for (int s = 0; s < 40; ++s) {
    const Tensor ids = lt::random_ids(4, 24, kVocab, 100 + s);
    const auto [h, l] = target(ids);
    opt.zero_grad();
    backward(trainer::feature_draft_loss(d, h, l, ids, 1.0).total);
    opt.step();
  }
  const auto after = trainer::evaluate_feature_draft(d, hh, hl, held_out);
  EXPECT_LT(after.kl, 0.7 * before.kl);
  ASSERT_EQ(after.top1.size(), 3u);  // depths 1..3 (random ids: their top-1 agreement is noise at this size)
}

// ---- checkpoints and the reduced vocabulary ----

std::string temp_h5(const std::string& name) { return ::testing::TempDir() + "/linspec_eagle_" + name + ".h5"; }

TEST(FeatureDraftCheckpoints, RoundTripWithAReducedVocabulary) {
  const LlamaModel m = lt::speculative_tiny_model("aug", 9, kVocab);
  const FeatureDraft d = random_draft(m, 10, {5, 1, 30, 7});
  EXPECT_EQ(d.vocab(), 4);
  EXPECT_EQ(d.token(2), 30);
  const std::string path = temp_h5("roundtrip");
  write_hdf5_atomically(path, [&](H5Handle f) { write_feature_draft(f, d); });
  ASSERT_TRUE(has_feature_draft(path));
  const FeatureDraft back = load_feature_draft(path, m);
  EXPECT_EQ(back.vocab_ids(), d.vocab_ids());
  const int64_t D = m.config().hidden_size;
  const Tensor f = random_features(6, D, 1);
  const Tensor ids = lt::random_ids(1, 6, kVocab, 2);
  const Tensor a = d.forward(f, ids), b = back.forward(f, ids);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  // The reduced head is the LM head's rows of those ids.
  const Tensor reduced = back.logits(a.view({6, D}));
  const Tensor full = back.full_logits(a.view({6, D}));
  ASSERT_EQ(reduced.shape(), (Shape{6, 4}));
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_NEAR(reduced.to_vector<float>()[r * 4 + j], full.to_vector<float>()[r * kVocab + d.token(j)], 1e-4);
}

void expect_input_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(FeatureDraftCheckpoints, BadGroupsAreInputErrorsNamingTheFileAndTensor) {
  const LlamaModel m = lt::speculative_tiny_model("aug", 11, kVocab);
  const FeatureDraft d = random_draft(m, 12, {3, 4});
  const std::string empty = temp_h5("empty");
  write_hdf5_atomically(empty, [](H5Handle) {});
  EXPECT_FALSE(has_feature_draft(empty));
  expect_input_error([&] { load_feature_draft(empty, m); }, {empty, "/draft/eagle"});
  // Each broken variant of a good group: the error names the file and what is wrong.
  struct Case {
    std::string name, needle;
    std::function<void(std::map<std::string, Tensor>&, nlohmann::json&)> edit;
  };
  const std::vector<Case> cases{
      {"no_fc", "fc.weight", [](auto& t, auto&) { t.erase("fc.weight"); }},
      {"fc_shape", "fc.weight", [](auto& t, auto&) { t["fc.weight"] = Tensor::zeros({32, 32}, DType::F32); }},
      {"vocab_range", "vocab_ids", [](auto& t, auto&) { t["vocab_ids"] = Tensor::from_vector<int32_t>({3, 99}, {2}); }},
      {"vocab_twice", "twice", [](auto& t, auto&) { t["vocab_ids"] = Tensor::from_vector<int32_t>({3, 3}, {2}); }},
      {"vocab_count", "vocab 5", [](auto&, auto& c) { c["vocab"] = 5; }},
      {"stranger", "bogus", [](auto& t, auto&) { t["bogus"] = Tensor::zeros({2}, DType::F32); }},
      {"no_q_proj", "q_proj", [](auto& t, auto&) { t.erase("layers.0.self_attn.q_proj.weight"); }},
      {"two_layers", "one layer", [](auto&, auto& c) { c["model"]["num_layers"] = 2; }},
  };
  for (const Case& c : cases) {
    std::map<std::string, Tensor> tensors = d.tensors();
    nlohmann::json cfg = d.config_json();
    c.edit(tensors, cfg);
    const std::string path = temp_h5(c.name);
    write_hdf5_atomically(path, [&](H5Handle f) {
      write_tensor_group(f, "draft/eagle", tensors);
      h5::Handle g = h5::open_group(f, "draft/eagle");
      h5::write_checked_string_attr(g.get(), "config", cfg.dump());
    });
    SCOPED_TRACE(c.name);
    expect_input_error([&] { load_feature_draft(path, m); }, {path, c.needle});
  }
}

TEST(FeatureDraftVocabulary, MostFrequentTokensComeFirstTiesByLowerId) {
  const std::vector<uint32_t> tokens{4, 4, 2, 9, 9, 9, 2, 7, 1, 4};
  EXPECT_EQ(most_frequent_tokens(tokens, 10, 4), (std::vector<int32_t>{4, 9, 2, 1}));
  EXPECT_EQ(most_frequent_tokens(tokens, 10, 10).size(), 10u);
}

}  // namespace
}  // namespace linspec
