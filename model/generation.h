// Autoregressive generation on top of LlamaModel::decode: prefill the prompt once, then one token per step.
// Token choice: greedy (temperature 0), or sampling from softmax(logits / T) restricted by top-k and then
// top-p (the order HF's logits warpers apply them), drawing one uniform from a seeded Philox per token so a
// run is reproducible from (seed, prompt).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "model/llama.h"

namespace linspec {

struct SamplingConfig {
  double temperature = 0.0;  // 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // keep the smallest set of most likely tokens whose mass reaches top_p
  uint64_t seed = 0;

  void validate() const;  // InputError on negative temperature, top_k < 0, top_p outside (0, 1]
};

// The distribution sampling draws from (after temperature, top-k, top-p), as probabilities over the vocab.
std::vector<double> sampling_distribution(const float* logits, int64_t vocab, const SamplingConfig& cfg);
// One token from one row of logits.
int32_t choose_token(const float* logits, int64_t vocab, const SamplingConfig& cfg, Philox& rng);
// Logits as contiguous f32 rows [N, vocab] on the host, from any device and dtype: sampling and speculative
// acceptance run there (one row per token or tree node, a few hundred KB), the model stays on its device.
Tensor host_logit_rows(const Tensor& logits, int64_t vocab);

struct GenerationConfig {
  int64_t max_new_tokens = 32;
  SamplingConfig sampling;
  std::vector<int64_t> stop_ids;  // generation ends after emitting one of these (it is included)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // the new tokens only
  bool stopped = false;         // ended on a stop id
};

// Single-sequence generation; the KV cache is sized prompt + max_new_tokens.
GenerationResult generate(const LlamaModel& model, const std::vector<int32_t>& prompt, const GenerationConfig& cfg);

}  // namespace linspec
