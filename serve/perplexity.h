// Perplexity protocol of `linspec eval --ppl`: the text is tokenized as one document with the model's
// settings; windows of `ctx` tokens advance by `stride` (default ctx: non-overlapping). In the first window
// every token but the first is scored; in later windows only the tokens not scored before (the last
// `stride`), each conditioned on up to ctx-1 predecessors. ppl = exp(mean NLL over scored tokens).
#pragma once
#include <cstdint>
#include <vector>

#include "model/llama.h"

namespace linspec {

struct PerplexityOptions {
  int64_t ctx = 1024;
  int64_t stride = 0;       // 0: ctx (non-overlapping windows)
  int64_t max_tokens = 0;   // 0: all; else only the first max_tokens tokens of the text
};

struct PerplexityResult {
  double ppl = 0, mean_nll = 0;
  int64_t tokens = 0;         // tokens in the evaluated text
  int64_t scored_tokens = 0;
  int64_t windows = 0;
  double seconds = 0;
};

PerplexityResult evaluate_perplexity(const LlamaModel& model, const std::vector<int32_t>& ids,
                                     const PerplexityOptions& options);

}  // namespace linspec
