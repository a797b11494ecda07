// Loads a checkpoint into a ready-to-run model and tokenizer (what eval, generate and verify start from).
#pragma once
#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "model/llama.h"

namespace linspec {

struct LoadedModel {
  Checkpoint checkpoint;  // tensors moved into the model; config, tokenizer and attrs stay here
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

LoadedModel load_model(const std::string& path, const LlamaOptions& options = {});

}  // namespace linspec
