// Which attention each decoder layer runs, as chosen by `linspec linearize --attention PRESET --set k=v
// --keep-softmax i,j` and stored in the checkpoint's model config JSON under "attention":
//   {"preset": "aug", "options": {"group_size": 64, "conv_taps": 32, ...}, "keep_softmax_layers": [0, 5]}
// The stored options are the resolved ones (every option of the preset with its value), so a checkpoint does
// not change meaning when a default changes.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/mixer.h"

namespace linspec {

struct AttentionSpec {
  std::string preset = "softmax";               // softmax | aug family | baseline | baseline+conv
  std::map<std::string, std::string> options;   // option key -> value text (as for --set key=value)
  std::vector<int64_t> keep_softmax_layers;     // layers that keep softmax attention

  bool is_softmax() const { return preset == "softmax"; }
  bool keeps_softmax(int64_t layer) const;
};

// Every registered preset name (attention/registry.h), for --help and error messages.
std::vector<std::string> attention_preset_names();

// Builds the mixer of `preset` for one layer (layer_index picks performer's per-layer seed). "softmax" gives
// SoftmaxAttention. InputError for an unknown preset or option, or a bad value (group size or taps ≤ 0, ...).
std::unique_ptr<AttentionMixer> make_mixer(const std::string& preset, const std::map<std::string, std::string>& options,
                                           const AttentionShape& shape, int64_t layer_index, const MixerInit& init = {});

// The spec with its options resolved (validated; every option of the preset present). InputError naming
// `where` for an unknown preset or option, a malformed value, or a kept layer outside [0, num_layers).
AttentionSpec resolve_attention_spec(const AttentionSpec& spec, int64_t num_layers, const std::string& where);

// JSON for the model config (null for an all-softmax spec) and back. Parsing resolves and validates.
nlohmann::json attention_spec_to_json(const AttentionSpec& spec);
AttentionSpec attention_spec_from_json(const nlohmann::json& j, int64_t num_layers, const std::string& where);

// "key=value" -> (key, value); InputError naming `where` when there is no '=' or the key is empty.
std::pair<std::string, std::string> parse_option_assignment(const std::string& text, const std::string& where);
// "0,5,7" -> {0, 5, 7}; InputError naming `where` for anything but comma-separated non-negative integers.
std::vector<int64_t> parse_layer_list(const std::string& text, const std::string& where);

}  // namespace linspec
