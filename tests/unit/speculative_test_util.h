// Tiny random targets for the speculative-decoding tests: weights scaled up from the HF init so logits are spread
// and the next token depends on the context (attention matters), vocabulary small enough that heads and drafts hit.
#pragma once
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/rng.h"
#include "core/threads.h"
#include "attention/spec.h"
#include "model/feature_draft.h"
#include "model/llama.h"

namespace linspec::testing {

// The tiny models run thousands of microsecond-sized ops: one thread, so OpenMP team start-up on a busy machine
// does not dominate (a 2-thread team made these tests 30x slower).
class SingleThreadEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { set_num_threads(1); }
};
inline ::testing::Environment* const kSingleThread = ::testing::AddGlobalTestEnvironment(new SingleThreadEnvironment);

inline ModelConfig speculative_tiny_config(int64_t vocab = 32) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 4096;
  c.tie_word_embeddings = true;
  return c;
}

inline void fill_normal(const Tensor& t, Philox& rng, double std) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(std * rng.normal());
}

// preset "softmax" or a linear preset; linear presets get group_size 8 (so 32+ tokens cross several groups) and
// random conv taps / λ_global = 1 so every branch carries signal.
inline LlamaModel speculative_tiny_model(const std::string& preset, uint64_t seed, int64_t vocab = 32,
                                         bool requires_grad = false) {
  LlamaOptions o;
  o.requires_grad = requires_grad;
  LlamaModel m = LlamaModel::random(speculative_tiny_config(vocab), seed, o);
  Philox rng(seed + 101);
  for (const auto& [name, t] : m.parameters().entries()) {
    if (name.find("norm") != std::string::npos) continue;
    fill_normal(t, rng, name.find("embed") != std::string::npos ? 1.0 : 0.25);
  }
  if (preset != "softmax") {
    AttentionSpec spec;
    spec.preset = preset;
    spec.options = {{"group_size", "8"}};
    m.set_attention_spec(spec);
    for (int64_t i = 0; i < m.num_layers(); ++i)
      for (const auto& [name, t] : m.layer(i).mixer->persistent_tensors()) {
        if (name.find("conv_w") != std::string::npos) fill_normal(t, rng, 0.3);
        if (name.find("lambda_global") != std::string::npos) Tensor(t).fill(1.0);
      }
  }
  return m;
}

// A feature draft whose tensors (all but the norm) are perturbed by N(0, stddev²), so its proposals differ from the
// target's and no branch is an identity; full or reduced vocabulary.
inline FeatureDraft random_feature_draft(const LlamaModel& target, uint64_t seed, std::vector<int32_t> vocab = {},
                                         double stddev = 0.1) {
  FeatureDraft d = FeatureDraft::init_from(target, std::move(vocab), false);
  Philox rng(seed);
  for (const auto& [name, t] : d.tensors())
    if (name != "vocab_ids" && name.find("norm") == std::string::npos) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] += static_cast<float>(stddev * rng.normal());
    }
  return d;
}

// Prompts of lengths 1 .. ~45 (many below the 31 past conv taps), ids from a seeded stream.
inline std::vector<std::vector<int32_t>> speculative_prompts(int64_t count, int64_t vocab, uint64_t seed) {
  Philox rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t len = 1 + (i * 7) % 45;
    std::vector<int32_t> p(len);
    for (auto& x : p) x = static_cast<int32_t>(rng.below(vocab));
    out.push_back(p);
  }
  return out;
}

}  // namespace linspec::testing
