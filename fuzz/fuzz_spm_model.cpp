// SentencePiece tokenizer.model: parse_sentencepiece_model, the protobuf reader convert uses for HF directories
// with a SentencePiece tokenizer, then the tokenizer prepare builds (libsentencepiece loads the same bytes).
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "model/formats/sentencepiece_model.h"
#include "model/tokenizer_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::expect_input_errors_only([&] {
    TokenizerData t = parse_sentencepiece_model(bytes, "tokenizer.model");
    t.validate("tokenizer.model");
    fuzz::exercise_tokenizer(t, "tokenizer.model");
  });
  return 0;
}
