// GGUF model files: what `linspec info` (describe_model_file) and `linspec convert` (load_pretrained: header,
// config, tensor shapes, dequantisation, tokenizer) do with one, then the tokenizer `prepare` would build from it.
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "model/formats/pretrained.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  fuzz::MemoryFile file(data, size);
  fuzz::expect_input_errors_only([&] { describe_model_file(file.path()); });
  fuzz::expect_input_errors_only([&] {
    const Checkpoint ck = load_pretrained(file.path());
    fuzz::exercise_tokenizer(ck.tokenizer, file.path());
  });
  return 0;
}
