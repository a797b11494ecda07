// What `generate --speculative` and `eval --speculative` need next to a loaded target: its draft heads (from the
// checkpoint's /draft/heads), its feature draft (/draft/eagle) or a draft model, and the Speculator over them.
//   draft source ""                  the checkpoint's own /draft/model
//                "first-layers:N"    the target's first N layers (untrained; shares the target's weights)
//                PATH                a checkpoint with /draft/model, or a standalone model checkpoint
#pragma once
#include <memory>
#include <string>

#include "model/draft_heads.h"
#include "model/llama.h"
#include "serve/speculative.h"

namespace linspec {

struct SpeculativeSetup {
  std::string mode;  // heads | eagle | draft
  std::string tree = "default";  // heads: "default", "auto" (dynamic, serve/decode_cost.h) or a tree JSON file;
                                 // eagle: always dynamic ("default" or "auto")
  bool fresh_heads = false;      // heads: ignore /draft/heads, use untrained ones (LM-head copies; smoke tests)
  std::string draft;             // draft: source as above
  int64_t gamma = 4;             // draft: tokens proposed per step
  // The draft's weight format: f32 | bf16 | int8 | target (the target's). A draft only proposes; verification is
  // exact whatever it reads, so the cheapest format costs no output change, only (slightly) acceptance.
  std::string draft_weights = "int8";
};

// The format `draft_weights` names for a target decoding in `target_format`; InputError for another value.
DType draft_weight_format(const std::string& draft_weights, DType target_format);

struct LoadedSpeculator {
  std::unique_ptr<DraftHeads> heads;
  std::unique_ptr<LlamaModel> draft;
  std::unique_ptr<FeatureDraft> eagle;
  std::unique_ptr<Speculator> speculator;  // declared last: destroyed before what it points to
};

// InputError naming the file when the checkpoint has no heads / draft, or the tree file or draft source is bad.
LoadedSpeculator load_speculator(const LlamaModel& target, const std::string& checkpoint_path,
                                 const SpeculativeSetup& setup);

}  // namespace linspec
