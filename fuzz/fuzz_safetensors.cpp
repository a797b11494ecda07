// safetensors weight files: the header parse and validation SafetensorsFile does when an HF directory is opened
// (convert, info), then every tensor converted to f32 and bf16 as load_hf_model does.
#include <cstdint>

#include "core/dtype.h"
#include "fuzz/fuzz_support.h"
#include "model/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  fuzz::MemoryFile file(data, size);
  fuzz::expect_input_errors_only([&] {
    const SafetensorsFile st(file.path());
    for (const auto& t : st.tensors()) {
      st.find(t.name);
      st.load(t, DType::F32);
      st.load(t, DType::BF16);
    }
  });
  return 0;
}
