// HF config.json: model_config_from_hf_file, what convert and info read first from an HF model directory (JSON
// parse, every architecture key and its size limits), then the RoPE table the config implies.
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  fuzz::MemoryFile file(data, size);
  fuzz::expect_input_errors_only([&] {
    const ModelConfig c = model_config_from_hf_file(file.path());
    rope_inv_freq(c);
  });
  return 0;
}
