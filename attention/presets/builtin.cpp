// The built-in preset list: one line per preset (its order is the order of --help and of error messages).
#include "attention/presets/builtin.h"

namespace linspec {

void register_builtin_attention_presets() {
  register_attention_preset(softmax_preset());
  register_attention_preset(aug_preset("aug"));
  register_attention_preset(aug_preset("local"));
  register_attention_preset(aug_preset("global"));
  register_attention_preset(aug_preset("local+global"));
  register_attention_preset(aug_preset("local+conv"));
  register_attention_preset(baseline_preset(BaselinePreset::Elu));
  register_attention_preset(baseline_preset(BaselinePreset::Relu));
  register_attention_preset(baseline_preset(BaselinePreset::Performer));
  register_attention_preset(baseline_preset(BaselinePreset::Cosformer));
  register_attention_preset(baseline_preset(BaselinePreset::Transnormer));
  register_attention_preset(baseline_preset(BaselinePreset::Yoso));
  register_attention_preset(baseline_preset(BaselinePreset::Hedgehog));
  register_attention_preset(baseline_preset(BaselinePreset::Window));
}

}  // namespace linspec
