#include "serve/model_loader.h"

#include "serve/serving_checkpoint.h"

namespace linspec {

LoadedModel load_model(const std::string& path, const LlamaOptions& options) {
  LoadedModel m;
  m.checkpoint = load_serving_checkpoint(path);  // a snapshot's LoRA adapters are merged
  LlamaOptions o = options;
  o.requires_grad = false;
  m.model = std::make_unique<LlamaModel>(LlamaModel::from_tensors(m.checkpoint.config, m.checkpoint.tensors, o, path));
  m.checkpoint.tensors.clear();  // the model holds what it needs
  m.tokenizer = make_tokenizer(m.checkpoint.tokenizer, path);
  return m;
}

}  // namespace linspec
