#include "data/spm_tokenizer.h"

#include <sentencepiece_processor.h>

#include "core/error.h"
#include "data/spm_model_proto.h"

namespace linspec {

SpmTokenizer::SpmTokenizer(const TokenizerData& d, const std::string& where)
    : Tokenizer(d), processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  d.validate(where);
  const std::string built = d.spm_model.empty() ? spm_model_from_vocab(d, where) : std::string();
  const auto status = processor_->LoadFromSerializedProto(d.spm_model.empty() ? built : d.spm_model);
  if (!status.ok()) throw_input_error(where, ": SentencePiece model does not load: ", status.ToString());

  spm_size_ = processor_->GetPieceSize();
  const size_t n = std::max<size_t>(size_t(spm_size_), d.vocab.size());
  for (auto [name, id] : {std::pair{"bos", d.bos_id}, {"eos", d.eos_id}, {"pad", d.pad_id}})
    if (id >= int64_t(n)) throw_input_error(where, ": ", name, " id ", id, " is outside the vocabulary");

  vocab_.resize(n);
  verbatim_.resize(n);
  skip_on_decode_.resize(n);
  for (int32_t id = 0; id < int32_t(n); ++id) {
    const bool added = id >= spm_size_;
    vocab_[id] = added ? d.vocab[id] : processor_->IdToPiece(id);
    if (!added && id < int32_t(d.vocab.size()) && d.vocab[id] != vocab_[id])
      throw_input_error(where, ": vocabulary token ", id, " '", d.vocab[id], "' differs from the SentencePiece model's '",
                        vocab_[id], "'");
    const int32_t type = id < int32_t(d.token_types.size()) ? d.token_types[id]
                         : added                              ? int32_t(kTokenUserDefined)
                         : processor_->IsControl(id)          ? int32_t(kTokenControl)
                         : processor_->IsUnknown(id)          ? int32_t(kTokenUnknown)
                                                              : int32_t(kTokenNormal);
    const bool control = type == kTokenControl || type == kTokenUnknown;
    // SentencePiece itself handles its user-defined pieces; control pieces and added tokens are ours.
    verbatim_[id] = control || added;
    skip_on_decode_[id] = control;
    if (verbatim_[id]) all_special_.add(vocab_[id], id);
    if (added && !control) added_only_.add(vocab_[id], id);
  }
  all_special_.finish();
  added_only_.finish();
}

SpmTokenizer::~SpmTokenizer() = default;

const std::string& SpmTokenizer::token(int32_t id) const {
  check_id(id);
  return vocab_[id];
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  add_bos_to(ids, options);
  std::vector<int> piece_ids;
  auto encode_plain = [&](std::string_view plain) {
    const auto status = processor_->Encode(plain, &piece_ids);
    if (!status.ok()) throw std::runtime_error("SentencePiece encode failed: " + status.ToString());
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  };
  const SpecialTokenMatcher& matcher = options.parse_special ? all_special_ : added_only_;
  for (const auto& segment : matcher.split(text)) {
    if (segment.id >= 0)
      ids.push_back(segment.id);
    else
      encode_plain(segment.text);
  }
  add_eos_to(ids, options);
  return ids;
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  std::string text, run_text;
  std::vector<int> run;  // consecutive SentencePiece ids, decoded together (spaces, byte fallback)
  auto flush = [&] {
    if (run.empty()) return;
    const auto status = processor_->Decode(run, &run_text);
    if (!status.ok()) throw std::runtime_error("SentencePiece decode failed: " + status.ToString());
    text += run_text;
    run.clear();
  };
  for (int32_t id : ids) {
    check_id(id);
    if (!verbatim_[id]) {
      run.push_back(id);
      continue;
    }
    flush();
    if (!(options.skip_special && skip_on_decode_[id])) text += vocab_[id];
  }
  flush();
  return text;
}

}  // namespace linspec
