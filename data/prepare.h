// `linspec prepare`: tokenize documents into train/val token shards. Each document is encoded with the
// model's settings (BOS when the tokenizer adds one) followed by EOS, so windows that span documents see
// the separator the model was trained with.
#pragma once
#include <string>
#include <vector>

#include "data/token_shards.h"
#include "data/tokenizer.h"

namespace linspec {

struct PrepareOptions {
  double val_fraction = 0.05;  // fraction of documents (at least one when > 0 and there are ≥ 2 documents)
  uint64_t seed = 0;           // which documents go to validation
};

TokenShards prepare_tokens(const Tokenizer& tok, const std::vector<std::string>& inputs, const PrepareOptions& opt);

}  // namespace linspec
