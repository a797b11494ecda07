// The built-in preset list: one line per preset (its order is the order of --help and of error messages). A new
// preset is its file under attention/presets/ plus its declaration and registration line here.
#include "attention/presets/builtin.h"

#include "attention/baselines/baseline_attention.h"
#include "attention/registry.h"

namespace linspec {

AttentionPreset softmax_preset();                       // attention/presets/softmax.cpp
AttentionPreset aug_preset(const std::string& name);    // attention/presets/aug.cpp: aug, local, global, ...
AttentionPreset baseline_preset(BaselinePreset which);  // attention/presets/baselines.cpp

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
