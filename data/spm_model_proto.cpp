#include "data/spm_model_proto.h"

#include <cstring>

#include "core/error.h"

namespace linspec {
namespace {

// Minimal protobuf wire-format writer: just what ModelProto needs.
class ProtoWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += char(0x80 | (v & 0x7F));
      v >>= 7;
    }
    out_ += char(v);
  }
  void tag(int field, int wire_type) { varint(uint64_t(field) << 3 | wire_type); }
  void int_field(int field, int64_t v) {  // int32/enum/bool; negatives take ten bytes, as protobuf does
    tag(field, 0);
    varint(uint64_t(v));
  }
  void float_field(int field, float v) {
    tag(field, 5);
    char le[4];
    std::memcpy(le, &v, 4);  // x86 and every target we build for is little-endian
    out_.append(le, 4);
  }
  void bytes_field(int field, std::string_view v) {
    tag(field, 2);
    varint(v.size());
    out_ += v;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// Field numbers from sentencepiece_model.proto.
enum : int {
  kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3,
  kPieceText = 1, kPieceScore = 2, kPieceType = 3,
  kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerByteFallback = 35,
  kTrainerUnkId = 40, kTrainerBosId = 41, kTrainerEosId = 42, kTrainerPadId = 43,
  kNormName = 1, kNormAddDummyPrefix = 3, kNormRemoveExtraWhitespaces = 4, kNormEscapeWhitespaces = 5,
};
constexpr int kModelTypeBpe = 2;

}  // namespace

std::string spm_model_from_vocab(const TokenizerData& d, const std::string& where) {
  const size_t n = d.vocab.size();
  if (n == 0) throw_input_error(where, ": SentencePiece tokenizer with neither a model nor a vocabulary");
  if (d.scores.size() != n)
    throw_input_error(where, ": ", d.scores.size(), " scores for ", n, " tokens (a SentencePiece vocabulary needs them)");
  if (!d.token_types.empty() && d.token_types.size() != n)
    throw_input_error(where, ": ", d.token_types.size(), " token types for ", n, " tokens");
  auto type_of = [&](size_t i) -> int32_t {
    const int64_t id = int64_t(i);
    if (!d.token_types.empty()) return d.token_types[i];
    if (id == d.unk_id || (d.unk_id < 0 && d.vocab[i] == "<unk>")) return kTokenUnknown;
    if (id == d.bos_id || id == d.eos_id || id == d.pad_id) return kTokenControl;
    return kTokenNormal;
  };
  int64_t unk = d.unk_id;
  bool has_bytes = false;
  ProtoWriter model;
  for (size_t i = 0; i < n; ++i) {
    const int32_t type = type_of(i);
    if (type < kTokenNormal || type > kTokenByte) throw_input_error(where, ": token ", i, " has unknown type ", type);
    if (type == kTokenUnknown && unk < 0) unk = int64_t(i);
    has_bytes |= type == kTokenByte;
    ProtoWriter piece;
    piece.bytes_field(kPieceText, d.vocab[i]);
    piece.float_field(kPieceScore, d.scores[i]);
    piece.int_field(kPieceType, type);
    model.bytes_field(kModelPieces, piece.str());
  }
  if (unk < 0) throw_input_error(where, ": SentencePiece vocabulary has no unknown token");

  ProtoWriter trainer;
  trainer.int_field(kTrainerModelType, kModelTypeBpe);
  trainer.int_field(kTrainerVocabSize, int64_t(n));
  trainer.int_field(kTrainerByteFallback, has_bytes);
  trainer.int_field(kTrainerUnkId, unk);
  trainer.int_field(kTrainerBosId, d.bos_id);
  trainer.int_field(kTrainerEosId, d.eos_id);
  trainer.int_field(kTrainerPadId, d.pad_id);
  model.bytes_field(kModelTrainerSpec, trainer.str());

  ProtoWriter normalizer;
  normalizer.bytes_field(kNormName, "identity");
  normalizer.int_field(kNormAddDummyPrefix, 1);
  normalizer.int_field(kNormRemoveExtraWhitespaces, 0);
  normalizer.int_field(kNormEscapeWhitespaces, 1);
  model.bytes_field(kModelNormalizerSpec, normalizer.str());
  return model.str();
}

}  // namespace linspec
