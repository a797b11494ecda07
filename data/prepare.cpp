#include "data/prepare.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "data/corpus.h"

namespace linspec {

TokenShards prepare_tokens(const Tokenizer& tok, const std::vector<std::string>& inputs, const PrepareOptions& opt) {
  if (opt.val_fraction < 0 || opt.val_fraction >= 1)
    throw_input_error("--val-fraction ", opt.val_fraction, ": must be in [0, 1)");
  std::vector<Document> docs;
  TokenShards out;
  for (const auto& path : inputs) {
    auto d = read_corpus_file(path);
    docs.insert(docs.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
    out.sources.push_back(path);
  }
  if (docs.empty()) throw_input_error("prepare: the inputs hold no documents");

  // A seeded permutation picks the validation documents, independent of input order within a file.
  std::vector<size_t> order(docs.size());
  std::iota(order.begin(), order.end(), 0);
  Philox rng(opt.seed ^ 0x7072657061726521ull);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  size_t n_val = static_cast<size_t>(opt.val_fraction * static_cast<double>(docs.size()) + 0.5);
  if (opt.val_fraction > 0 && n_val == 0 && docs.size() >= 2) n_val = 1;
  std::vector<bool> is_val(docs.size(), false);
  for (size_t i = 0; i < n_val; ++i) is_val[order[i]] = true;

  for (size_t i = 0; i < docs.size(); ++i) {
    std::vector<int32_t> ids = tok.encode(docs[i].text);
    if (tok.eos() >= 0) ids.push_back(tok.eos());
    TokenSplit& split = is_val[i] ? out.val : out.train;
    split.doc_offsets.push_back(split.tokens.size());
    for (int32_t id : ids) split.tokens.push_back(static_cast<uint32_t>(id));
  }
  if (docs.size() == 1 && opt.val_fraction > 0) {
    // One document: hold out its tail so validation still exists.
    auto& t = out.train.tokens;
    const size_t cut = t.size() - static_cast<size_t>(opt.val_fraction * static_cast<double>(t.size()));
    out.val.tokens.assign(t.begin() + static_cast<std::ptrdiff_t>(cut), t.end());
    out.val.doc_offsets = {0};
    t.resize(cut);
  }
  out.tokenizer_fingerprint = tok.fingerprint();
  return out;
}

}  // namespace linspec
