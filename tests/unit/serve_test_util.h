// Shared by the serve tests: a tiny byte-level BPE tokenizer (every byte a token, a few merges, an EOS) and a tiny
// random linear-attention model whose vocabulary covers it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "attention/spec.h"
#include "data/byte_unicode.h"
#include "data/tokenizer.h"
#include "llama_test_util.h"
#include "model/llama.h"

namespace linspec::testing {

inline TokenizerData serve_tokenizer_data() {
  TokenizerData d;
  d.type = "bpe";
  d.pre = "gpt2";
  for (int b = 0; b < 256; ++b) {
    d.vocab.push_back(byte_to_unicode(uint8_t(b)));
    d.token_types.push_back(kTokenNormal);
  }
  for (const char* m : {"t h", "th e", "\u0120 the"}) {
    d.merges.push_back(m);
    std::string s = m;
    s.erase(s.find(' '), 1);
    d.vocab.push_back(s);
    d.token_types.push_back(kTokenNormal);
  }
  d.vocab.push_back("<|end|>");
  d.token_types.push_back(kTokenControl);
  d.eos_id = static_cast<int64_t>(d.vocab.size()) - 1;
  return d;
}

// `layers` layers of the aug preset (small groups and conv, so prompts cross group boundaries), vocab 264.
inline LlamaModel serve_model(uint64_t seed = 5, const std::string& preset = "aug") {
  ModelConfig c = tiny_llama_config();
  c.vocab_size = 264;
  LlamaOptions o;
  o.requires_grad = false;
  LlamaModel m = LlamaModel::random(c, seed, o);
  AttentionSpec s;
  s.preset = preset;
  if (preset == "aug") s.options = {{"group_size", "4"}, {"conv_taps", "3"}};
  m.set_attention_spec(s);
  // Fresh aug starts with λ_global = 0 and a zero conv: give every mixer tensor random values so all branches run.
  Philox rng(seed + 1);
  for (const auto& [name, t] : m.named_parameters()) {
    if (name.find(".la.") == std::string::npos && name.find("lambda") == std::string::npos &&
        name.find("conv") == std::string::npos)
      continue;
    std::vector<double> v(t.numel());
    for (auto& x : v) x = 0.2 * rng.normal();
    Tensor src = Tensor::from_vector(v, t.shape()).to(t.dtype());
    std::copy_n(static_cast<const char*>(src.raw_data()), src.nbytes(), static_cast<char*>(t.raw_data()));
  }
  return m;
}

}  // namespace linspec::testing
