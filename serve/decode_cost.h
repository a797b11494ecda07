// The machine's cost of speculative verification: milliseconds per tree pass as a function of the tree's node count,
// for one model shape, weight format, device and thread count. Measured once per machine by `linspec bench decode`
// (or the first `--tree auto` run) and cached, so dynamic trees (serve/speculative.h) can choose how many nodes a
// step verifies: on 2 CPU cores a 9-node pass costs several single-token steps (the GEMMs become compute-bound), on a
// GPU nearly one.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/draft_heads.h"
#include "model/llama.h"

namespace linspec {

struct DecodeCost {
  std::string key;                // what the figures are valid for (decode_cost_key)
  double ar_step_ms = 0;          // one token through decode()
  double draft_ms = 0;            // the draft heads' logits for one sequence (0 without heads)
  std::vector<int64_t> nodes;     // tree sizes measured, increasing (1 = the root alone)
  std::vector<double> verify_ms;  // verify_tree (with the LM head) at each size

  // Interpolated linearly between measured sizes, extrapolated from the last two beyond them.
  double verify_ms_at(int64_t n) const;
  nlohmann::json to_json() const;
  // InputError naming `where` when the JSON lacks a field or the sizes are not increasing.
  static DecodeCost from_json(const nlohmann::json& j, const std::string& where);
};

// Machine (CPU model, threads, device), model shape (layers, hidden, vocab, attention preset) and inference weights.
std::string decode_cost_key(const LlamaModel& model, const DraftHeads* heads = nullptr);
// $LINSPEC_CACHE (default ~/.cache/linspec)/decode_cost/<xxh64 of the key>.json
std::string decode_cost_cache_path(const std::string& key);

// The tree sizes measured: dense where dynamic trees usually land, sparser up to the largest they may grow.
inline const std::vector<int64_t> kDecodeCostNodes{1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32};

// Where a pass goes: milliseconds per pass of each op kind (model/op_profile.h names: gemm.qkv, attention, ...),
// for the AR step and for verify_tree at each measured size (`bench decode --profile`).
struct DecodeProfile {
  std::map<std::string, double> ar_step_ms;
  std::vector<std::map<std::string, double>> verify_ms;  // one per DecodeCost::nodes entry
};

// Continuous batching's AR step (model/batched_decode.h decode_batched: one new token for each of B sequences) at
// each batch size: ms per step (medians of `reps`) and, with `profile`, ms per step of each op kind.
struct BatchedDecodeCost {
  std::vector<int64_t> batch;
  std::vector<double> step_ms;
  std::vector<std::map<std::string, double>> profile_ms;  // empty without profile
};
BatchedDecodeCost measure_batched_decode(const LlamaModel& model, const std::vector<int64_t>& batch, int reps = 5,
                                         bool profile = false);

// Times decode() and verify_tree() over binary trees of each size (medians of `reps`), and the heads when given.
// With `profile`, `reps` more passes of each run under the op profiler (not timed: its clocks cost a little).
DecodeCost measure_decode_cost(const LlamaModel& model, const DraftHeads* heads,
                               const std::vector<int64_t>& nodes = kDecodeCostNodes, int reps = 5,
                               DecodeProfile* profile = nullptr);
// The cached figures for this model and machine, else measured now and cached (`measured` says which).
DecodeCost cached_decode_cost(const LlamaModel& model, const DraftHeads* heads, bool* measured = nullptr);

}  // namespace linspec
