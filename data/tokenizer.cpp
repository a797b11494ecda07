#include "data/tokenizer.h"

#include <xxhash.h>

#include <cstring>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/spm_tokenizer.h"

namespace linspec {
namespace {

class Fingerprinter {
 public:
  Fingerprinter() : state_(XXH64_createState()) { XXH64_reset(state_, 0); }
  ~Fingerprinter() { XXH64_freeState(state_); }

  void u64(uint64_t v) {
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = (v >> (8 * i)) & 0xFF;
    XXH64_update(state_, le, 8);
  }
  void bytes(std::string_view s) {
    u64(s.size());
    XXH64_update(state_, s.data(), s.size());
  }
  uint64_t digest() const { return XXH64_digest(state_); }

 private:
  XXH64_state_t* state_;
};

}  // namespace

bool is_special_token_type(int32_t type) {
  return type == kTokenControl || type == kTokenUserDefined;
}

uint64_t tokenizer_fingerprint(const TokenizerData& d) {
  Fingerprinter h;
  h.bytes("linspec-tokenizer-v1");
  h.bytes(d.type);
  h.u64(d.vocab.size());
  for (const auto& t : d.vocab) h.bytes(t);
  h.u64(d.merges.size());
  for (const auto& m : d.merges) h.bytes(m);
  h.u64(d.scores.size());
  for (float s : d.scores) {
    uint32_t bits;
    static_assert(sizeof bits == sizeof s);
    std::memcpy(&bits, &s, sizeof bits);
    h.u64(bits);
  }
  h.u64(d.token_types.size());
  for (int32_t t : d.token_types) h.u64(uint32_t(t));
  for (int64_t id : {d.bos_id, d.eos_id, d.unk_id, d.pad_id}) h.u64(uint64_t(id));
  h.u64(d.add_bos ? 1 : 0);
  h.u64(d.add_eos ? 1 : 0);
  h.bytes(d.pre);
  h.bytes(d.pre_tokenizer_json);
  h.bytes(d.spm_model);
  return h.digest();
}

Tokenizer::Tokenizer(const TokenizerData& d)
    : bos_(int32_t(d.bos_id)),
      eos_(int32_t(d.eos_id)),
      pad_(int32_t(d.pad_id)),
      add_bos_(d.add_bos),
      add_eos_(d.add_eos),
      fingerprint_(tokenizer_fingerprint(d)) {}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw_input_error("token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
}

void Tokenizer::add_bos_to(std::vector<int32_t>& ids, const EncodeOptions& o) const {
  if (o.add_special && add_bos_ && bos_ >= 0) ids.push_back(bos_);
}

void Tokenizer::add_eos_to(std::vector<int32_t>& ids, const EncodeOptions& o) const {
  if (o.add_special && add_eos_ && eos_ >= 0) ids.push_back(eos_);
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerData& data, const std::string& where) {
  data.validate(where);
  if (data.type == "bpe") return std::make_unique<BpeTokenizer>(data, where);
  if (data.type == "spm") return std::make_unique<SpmTokenizer>(data, where);
  throw_input_error(where, ": unknown tokenizer type '", data.type, "' (expected \"bpe\" or \"spm\")");
}

}  // namespace linspec
