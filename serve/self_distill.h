// Self-distilled training data for the drafts (docs/method.md §5.5): the target's own continuations of prompts taken
// from a corpus, written as token shards that `linspec train` reads like any corpus. A draft trained on what the
// target itself generates sees the contexts it will draft in when serving (for greedy serving: the target's greedy
// paths), not only the corpus's.
//
// Each document is a prompt window of the source split followed by the target's continuation (ending early at a stop
// id). The continuations run as a continuous batch (model/batched_decode.h): every row equals generate() on that
// prompt alone, so the data does not depend on the batch size.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/token_shards.h"
#include "model/generation.h"
#include "model/llama.h"

namespace linspec {

struct SelfDistillConfig {
  int64_t train_sequences = 256, val_sequences = 8;
  int64_t prompt_len = 32;     // tokens of the source split per prompt
  int64_t batch = 16;          // sequences decoded together
  GenerationConfig generation; // max_new_tokens, sampling (per-sequence Philox streams forked from its seed), stops
};

// Prompts: `count` windows of `len` tokens of `split`, at offsets drawn from Philox(seed) (InputError naming the
// split's source when it is shorter than `len`).
std::vector<std::vector<int32_t>> corpus_prompts(const TokenSplit& split, int64_t count, int64_t len, uint64_t seed);

// prompt[i] + the model's continuation of it, i = 0.. (sequence i samples from Philox(seed).fork(i)).
// `progress(done, total)` is called after every decoded batch when given.
std::vector<std::vector<int32_t>> continue_prompts(const LlamaModel& model,
                                                   const std::vector<std::vector<int32_t>>& prompts,
                                                   const GenerationConfig& cfg, int64_t batch,
                                                   const std::function<void(int64_t, int64_t)>& progress = {});

// The shards: train documents from the source's train split, val documents from its val split (or from train when
// it has none); the tokenizer fingerprint is the source's.
TokenShards self_distill(const LlamaModel& model, const TokenShards& source, const SelfDistillConfig& cfg,
                         const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace linspec
