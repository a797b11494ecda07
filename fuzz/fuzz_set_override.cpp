// `linspec train --set key=value`: each input line is one --set argument, applied to a fixed valid staged
// experiment by parse_training_stages, as cmd_train passes them (every stage, or stages.<name>.key=value).
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "trainer/stages.h"

namespace {
const char* kBase = R"(model: {init: model.h5, attention: {preset: aug}}
data: {path: data.h5, seq_len: 64}
train: {steps: 4, warmup_steps: 1, lr: 1.0e-3}
checkpoint: {dir: out/run, every: 2}
stages:
  - name: transfer
    objectives: {ce: 0, attention_transfer: 1}
    trainable: [attention_new]
  - name: finetune
    trainable: [lora, norms]
)";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linspec;
  std::vector<std::string> overrides;
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  fuzz::expect_input_errors_only([&] {
    for (const auto& stage : trainer::parse_training_stages(kBase, "base.yaml", overrides))
      stage.config.resolved_yaml();
  });
  return 0;
}
