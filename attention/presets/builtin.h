// The presets linspec ships (one file each under attention/presets/), registered in attention/presets/builtin.cpp.
#pragma once
#include "attention/baselines/baseline_attention.h"
#include "attention/registry.h"

namespace linspec {

AttentionPreset softmax_preset();                  // attention/presets/softmax.cpp
AttentionPreset aug_preset(const std::string& name);  // attention/presets/aug.cpp: aug, local, global, ...
AttentionPreset baseline_preset(BaselinePreset which);  // attention/presets/baselines.cpp

// Called once, by the registry, before the first lookup.
void register_builtin_attention_presets();

}  // namespace linspec
