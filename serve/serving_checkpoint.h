// What serving runs, from a native checkpoint or a training snapshot (trainer/snapshot.h), and `linspec export`'s
// serving checkpoint: the model with its LoRA adapters merged into the base weights, the tokenizer, and the draft
// heads / draft model / feature draft when present; optimizer state, trainer state (RNG, data cursors) and any other group dropped.
#pragma once
#include <string>

#include "model/checkpoint.h"

namespace linspec {

// load_checkpoint (every checksum verified: a corrupt tensor is an InputError naming the file and tensor), then
// W += (α/r)·B A for every adapter (model/lora.h) and the "lora" attribute removed. load_model uses it, so eval and
// generate on a snapshot run the trained model, as they do on its export.
// `merged_adapters`, when given, receives the number of adapters merged.
Checkpoint load_serving_checkpoint(const std::string& path, int* merged_adapters = nullptr);

// Writes `out` atomically (temporary name, fsync, rename): `model` (as load_serving_checkpoint gives it) plus the
// /draft/heads, /draft/model and /draft/eagle groups of `source`, whose checksums are verified before they are copied as
// stored. Nothing is left at `out` when anything fails.
void write_serving_checkpoint(const Checkpoint& model, const std::string& source, const std::string& out);

}  // namespace linspec
