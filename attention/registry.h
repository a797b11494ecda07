// The attention presets: every token mixer a decoder layer can run (softmax, the aug family, the baselines and
// their `+conv` hybrids) is one self-describing entry here — its name, its options with type, range and default,
// what `trainable: attention_new` trains, and how to build one layer's mixer (whose parallel, recurrent and tree
// forms are the AttentionMixer interface of attention/mixer.h). Everything that lists presets or options reads
// this table: `linspec linearize --attention/--set` and its --help, the YAML keys `model.attention.*`, checkpoint
// configs (attention/spec.h) and the trainer, which never names a preset.
//
// Adding a preset = one file that returns an AttentionPreset + one register_attention_preset() line in
// attention/presets/builtin.cpp (or a call at start-up, as the toy preset in tests/unit/test_attention_registry.cpp
// does). docs/architecture.md §8 walks through it.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attention/mixer.h"
#include "core/option_parse.h"

namespace linspec {

enum class OptionType { Int, UInt, Number, Bool };

struct PresetOption {
  std::string name;
  OptionType type = OptionType::Int;
  std::string default_value;               // canonical text (as `--set key=value` takes it)
  double min = -INFINITY, max = INFINITY;  // inclusive bounds (Int, UInt, Number)
  bool min_exclusive = false;              // min itself is not allowed (a positive number: min 0, exclusive)
  std::string help;
};

// A preset's options after parsing: every option of the preset, each with its canonical text (given or default).
class PresetOptions {
 public:
  PresetOptions() = default;
  explicit PresetOptions(std::map<std::string, std::string> values) : values_(std::move(values)) {}
  int64_t integer(const std::string& name) const;
  uint64_t unsigned_integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  const std::string& at(const std::string& name) const;
  std::map<std::string, std::string> values_;
};

struct AttentionPreset {
  std::string name;     // what --attention and model.attention.preset take
  std::string summary;  // one line for --help
  std::string trains;   // what `trainable: attention_new` (and attention_transfer) trains in each layer
  std::vector<PresetOption> options;
  // Also register "<name>+conv": this preset plus the seed's causal depthwise conv on V (option conv_taps).
  bool conv_variant = false;
  // One layer's mixer; layer_index lets a preset vary per layer (performer draws ω from seed + layer).
  std::function<std::unique_ptr<AttentionMixer>(const PresetOptions&, const AttentionShape&, int64_t layer_index,
                                                 const MixerInit&)>
      make;
  // Checks across options beyond their types and ranges (may be empty); throws InputError naming `where`.
  std::function<void(const PresetOptions&, const std::string& where)> check;
};

// Adds a preset (and its +conv variant). LINSPEC_CHECK on a duplicate name, a missing `make`, or an option
// default outside its own range.
void register_attention_preset(AttentionPreset preset);
// Every preset in registration order (the built-in ones of attention/presets/builtin.cpp first).
const std::vector<AttentionPreset>& attention_presets();
// nullptr for an unknown name.
const AttentionPreset* find_attention_preset(const std::string& name);
// The preset named `name`; InputError naming `where` and listing the known presets otherwise.
const AttentionPreset& attention_preset(const std::string& name, const std::string& where);

// `given` (option -> text) checked against the preset: unknown options, malformed values and values out of range
// are InputErrors naming `where`, the option and the preset; absent options take their defaults.
PresetOptions parse_preset_options(const AttentionPreset& preset, const std::map<std::string, std::string>& given,
                                   const std::string& where);

// "group_size (int ≥ 1, default 64)": how --help and error messages show an option.
std::string describe_option(const PresetOption& option);
// Every preset with its summary, options and what it trains (linspec linearize --help).
std::string attention_presets_help();

}  // namespace linspec
