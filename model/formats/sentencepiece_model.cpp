#include "model/formats/sentencepiece_model.h"

#include <cstring>

#include "core/error.h"

namespace linspec {
namespace {

// Protobuf wire format over a byte range; every read is bounds-checked.
class ProtoReader {
 public:
  ProtoReader(const char* p, const char* end, const std::string& path) : p_(p), end_(end), path_(path) {}
  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      const uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  // Next field: number and wire type.
  std::pair<uint32_t, uint32_t> tag() {
    const uint64_t t = varint();
    return {static_cast<uint32_t>(t >> 3), static_cast<uint32_t>(t & 7)};
  }
  ProtoReader sub() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("length-delimited field runs past its message");
    ProtoReader r(p_, p_ + n, path_);
    p_ += n;
    return r;
  }
  std::string bytes() {
    ProtoReader r = sub();
    return std::string(r.p_, r.end_);
  }
  float fixed32_float() {
    if (end_ - p_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: advance(8); return;
      case 2: sub(); return;
      case 5: advance(4); return;
      default: fail("unsupported protobuf wire type " + std::to_string(wire));
    }
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw_input_error(path_, ": not a valid SentencePiece model (", why, ")");
  }

 private:
  void advance(int64_t n) {
    if (end_ - p_ < n) fail("truncated field");
    p_ += n;
  }
  const char* p_;
  const char* end_;
  const std::string& path_;
};

// int32 fields are encoded as sign-extended 64-bit varints.
int64_t as_int32(uint64_t v) { return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(v))); }

}  // namespace

TokenizerData parse_sentencepiece_model(const std::string& bytes, const std::string& path) {
  TokenizerData t;
  t.type = "spm";
  t.spm_model = bytes;
  t.pre = "default";
  // TrainerSpec defaults (sentencepiece_model.proto).
  t.unk_id = 0;
  t.bos_id = 1;
  t.eos_id = 2;
  t.pad_id = -1;
  ProtoReader model(bytes.data(), bytes.data() + bytes.size(), path);
  bool has_trainer_spec = false, has_normalizer_spec = false;
  while (!model.done()) {
    auto [field, wire] = model.tag();
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      ProtoReader piece = model.sub();
      std::string text;
      float score = 0;
      int32_t type = kTokenNormal;
      while (!piece.done()) {
        auto [f, w] = piece.tag();
        if (f == 1 && w == 2) text = piece.bytes();
        else if (f == 2 && w == 5) score = piece.fixed32_float();
        else if (f == 3 && w == 0) type = static_cast<int32_t>(piece.varint());
        else piece.skip(w);
      }
      // SentencePiece::Type is NORMAL=1 .. BYTE=6, the numbering TokenType shares.
      if (type < kTokenNormal || type > kTokenByte)
        model.fail("piece " + std::to_string(t.vocab.size()) + ": type " + std::to_string(type) + " is not 1..6");
      t.vocab.push_back(std::move(text));
      t.scores.push_back(score);
      t.token_types.push_back(type);
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      has_trainer_spec = true;
      ProtoReader spec = model.sub();
      while (!spec.done()) {
        auto [f, w] = spec.tag();
        if (w == 0 && f >= 40 && f <= 43) {
          const int64_t v = as_int32(spec.varint());
          (f == 40 ? t.unk_id : f == 41 ? t.bos_id : f == 42 ? t.eos_id : t.pad_id) = v;
        } else {
          spec.skip(w);
        }
      }
    } else {
      if (field == 3 && wire == 2) has_normalizer_spec = true;
      model.skip(wire);
    }
  }
  if (t.vocab.empty()) model.fail("no pieces");
  // Every trainer writes both specs after the pieces, so a file cut at a piece boundary still parses; without them it
  // is truncated (or not a trained model), and the special ids would silently fall back to the defaults.
  if (!has_trainer_spec || !has_normalizer_spec)
    model.fail(!has_trainer_spec ? "no trainer_spec (field 2): truncated?" : "no normalizer_spec (field 3): truncated?");
  t.add_bos = true;  // SentencePiece LLaMA tokenizers prepend BOS unless the model's settings say otherwise
  t.validate(path);
  return t;
}

}  // namespace linspec
