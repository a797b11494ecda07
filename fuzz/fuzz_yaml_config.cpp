// Experiment YAML: parse_training_stages, what `linspec train CONFIG.yaml` (and bench train) reads: YAML syntax,
// duplicate and complex keys, the schema with its types and ranges, attention presets, and staged files.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "trainer/stages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_input_errors_only([&] {
    for (const auto& stage : trainer::parse_training_stages(text, "fuzz.yaml")) stage.config.resolved_yaml();
  });
  return 0;
}
