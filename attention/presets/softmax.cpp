// "softmax": the pretrained model's own attention (a KV cache when decoding).
#include "attention/registry.h"

namespace linspec {

AttentionPreset softmax_preset() {
  AttentionPreset p;
  p.name = "softmax";
  p.summary = "the pretrained softmax attention with a KV cache (no linearization)";
  p.trains = "nothing (no parameters of its own)";
  p.make = [](const PresetOptions&, const AttentionShape& shape, int64_t, const MixerInit&) {
    return std::unique_ptr<AttentionMixer>(std::make_unique<SoftmaxAttention>(shape));
  };
  return p;
}

}  // namespace linspec
