// HF tokenizer.json: load_hf_tokenizer over a directory holding the input as tokenizer.json (what convert does for
// an HF model), then the tokenizer prepare builds from it, encoding and decoding a fixed text.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "model/config.h"
#include "model/formats/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  const std::string& dir = fuzz::scratch_dir();
  fuzz::write_file(dir + "/tokenizer.json", data, size);
  ModelConfig config;
  config.vocab_size = 1 << 20;  // the tokenizer's own checks are under test, not the vocab_size cross-check
  config.bos_token_id = 0;
  config.eos_token_ids = {1};
  fuzz::expect_input_errors_only([&] {
    const TokenizerData t = load_hf_tokenizer(dir, config);
    fuzz::exercise_tokenizer(t, dir + "/tokenizer.json");
  });
  return 0;
}
