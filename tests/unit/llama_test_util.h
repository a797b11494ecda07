// Shared helpers for the LLaMA model tests: a tiny config with awkward sizes and error measures.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "model/config.h"
#include "model/llama.h"

namespace linspec::testing {

// 2 layers, GQA 6:2 (3 query heads per kv head), odd hidden / FFN / vocab, head_dim 6 (so Hq·d ≠ hidden).
inline ModelConfig tiny_llama_config(bool tied = true, bool bias = true) {
  ModelConfig c;
  c.vocab_size = 53;
  c.hidden_size = 27;
  c.intermediate_size = 37;
  c.num_layers = 2;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  c.head_dim = 6;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  c.attention_bias = bias;
  return c;
}

// Random ids in [0, vocab) as i32 [B, T].
inline Tensor random_ids(int64_t batch, int64_t steps, int64_t vocab, uint64_t seed) {
  Philox rng(seed);
  std::vector<int32_t> ids(batch * steps);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(vocab));
  return Tensor::from_vector(ids, {batch, steps});
}

// Gives the (zero-initialised) biases random values so the tests exercise them.
inline void randomize_biases(const LlamaModel& m, uint64_t seed) {
  Philox rng(seed);
  for (const auto& [name, t] : m.parameters().entries()) {
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".bias") != 0) continue;
    std::vector<double> v(t.numel());
    for (auto& x : v) x = 0.1 * rng.normal();
    Tensor src = Tensor::from_vector(v, t.shape()).to(t.dtype());
    std::copy_n(static_cast<const char*>(src.raw_data()), src.nbytes(), static_cast<char*>(t.raw_data()));
  }
}

// max |a - b| / max |b| over all elements.
inline double max_rel_err(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return diff / std::max(scale, 1e-300);
}

}  // namespace linspec::testing
