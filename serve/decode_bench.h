// Decode-speed and memory measurements for `linspec eval --decode / --speculative / --context-sweep`:
//   autoregressive   prefill tokens/s and AR decode tokens/s (greedy unless a temperature is given)
//   speculative      the same prompts through a Speculator: tokens/s, mean accepted tokens per step (bonus counted,
//                    and the candidates-only figure), speedup vs AR on the same checkpoint, and whether the greedy
//                    output matched AR token for token
//   context sweep    per context length: prefill time, decode tokens/s there, decode-state (KV cache or recurrent
//                    state) bytes, process RSS; plus a PNG of tokens/s and memory vs context (gnuplot)
// Timings are wall-clock on the calling thread's OpenMP team; decode tokens/s counts the new tokens over the time
// after prefill (the first token comes from the prefill logits in both AR and speculative runs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/generation.h"
#include "model/llama.h"
#include "serve/speculative.h"

namespace linspec {

struct DecodeRun {
  std::vector<std::vector<int32_t>> outputs;  // new tokens per prompt
  nlohmann::json report;
};

// With `profile`, a run's report also carries "profile_ms": ms per decoded token (AR) or per speculative step of
// every op region (model/op_profile.h), named by phase: "prefill/<op>", "step/<op>" (AR), "draft/<op>",
// "verify/<op>", "accept", "commit/<op>" (speculative). Timing each region costs two clock reads.

// AR decoding of every prompt (one at a time, batch 1), max_new_tokens each, no stop ids.
DecodeRun bench_autoregressive(const LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                               const GenerationConfig& cfg, bool profile = false);
// Speculative decoding of the same prompts, one at a time (batch 1) unless `batch` > 1 (static batches).
// `ar` (optional): the AR run to compare with (speedup; identical outputs when greedy).
DecodeRun bench_speculative(const Speculator& spec, const std::vector<std::vector<int32_t>>& prompts,
                            const GenerationConfig& cfg, const DecodeRun* ar, int64_t batch = 1,
                            bool profile = false);

// Share of the generated n-grams (within each output) that repeat an earlier one of the same output: 0 for text that
// never repeats itself, near 1 for a loop. Greedy decoding of a small model loops, and a loop is easy to draft, so
// the AR report carries it beside the speed-ups (`repeated_4gram_fraction`).
double repeated_ngram_fraction(const std::vector<std::vector<int32_t>>& outputs, int n = 4);

// Prefills `length` tokens (taken cyclically from `source`) in chunks, then decodes `decode_tokens` greedily.
nlohmann::json context_sweep(const LlamaModel& model, const std::vector<int32_t>& source,
                             const std::vector<int64_t>& lengths, int64_t decode_tokens, int64_t chunk = 2048);
// Writes a PNG of decode tokens/s and memory (state, RSS) vs context with gnuplot; false (and a note on stderr)
// when gnuplot is unavailable or fails.
bool plot_context_sweep(const nlohmann::json& sweep, const std::string& title, const std::string& png_path);

int64_t current_rss_bytes();  // VmRSS of this process
int64_t peak_rss_bytes();     // VmHWM of this process

}  // namespace linspec
