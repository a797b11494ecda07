// The presets linspec ships, registered by attention/presets/builtin.cpp (one file per preset family under
// attention/presets/, each declared next to its registration lines there).
#pragma once

namespace linspec {

// Called once, by the registry, before the first lookup.
void register_builtin_attention_presets();

}  // namespace linspec
