// The attention section of a model config (attention/spec.h): resolving a spec against the preset table
// (attention/registry.h), its JSON form, and the `key=value` / layer-list syntax of the command line.
#include <algorithm>
#include <cstdlib>
#include <set>

#include "attention/registry.h"
#include "attention/spec.h"
#include "core/error.h"

namespace linspec {
namespace {

// JSON value -> the option text `--set` would take.
std::string option_text(const nlohmann::json& v, const std::string& key, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  throw_input_error(where, ": attention option '", key, "' must be a string, number or boolean");
}

// Option text -> typed JSON (integers and numbers as numbers, booleans as booleans).
nlohmann::json option_json(const std::string& text) {
  if (text == "true" || text == "false") return text == "true";
  char* end = nullptr;
  const long long i = std::strtoll(text.c_str(), &end, 10);
  if (!text.empty() && *end == '\0') return i;
  const unsigned long long u = std::strtoull(text.c_str(), &end, 10);
  if (!text.empty() && text[0] != '-' && *end == '\0') return u;
  const double d = std::strtod(text.c_str(), &end);
  if (!text.empty() && *end == '\0') return d;
  return text;
}

}  // namespace

bool AttentionSpec::keeps_softmax(int64_t layer) const {
  return is_softmax() ||
         std::find(keep_softmax_layers.begin(), keep_softmax_layers.end(), layer) != keep_softmax_layers.end();
}

std::vector<std::string> attention_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : attention_presets()) names.push_back(p.name);
  return names;
}

std::unique_ptr<AttentionMixer> make_mixer(const std::string& preset, const std::map<std::string, std::string>& options,
                                           const AttentionShape& shape, int64_t layer_index, const MixerInit& init) {
  const AttentionPreset& p = attention_preset(preset, "attention options");
  return p.make(parse_preset_options(p, options, "attention options"), shape, layer_index, init);
}

AttentionSpec resolve_attention_spec(const AttentionSpec& spec, int64_t num_layers, const std::string& where) {
  AttentionSpec out = spec;
  out.options = parse_preset_options(attention_preset(spec.preset, where), spec.options, where).values();
  std::set<int64_t> kept;
  for (int64_t layer : spec.keep_softmax_layers) {
    if (layer < 0 || layer >= num_layers)
      throw_input_error(where, ": softmax layer ", layer, " is outside the model's ", num_layers, " layers");
    kept.insert(layer);
  }
  out.keep_softmax_layers.assign(kept.begin(), kept.end());
  if (out.is_softmax()) out.keep_softmax_layers.clear();
  return out;
}

nlohmann::json attention_spec_to_json(const AttentionSpec& spec) {
  if (spec.is_softmax()) return nullptr;
  nlohmann::json opts = nlohmann::json::object();
  for (const auto& [k, v] : spec.options) opts[k] = option_json(v);
  return {{"preset", spec.preset}, {"options", opts}, {"keep_softmax_layers", spec.keep_softmax_layers}};
}

AttentionSpec attention_spec_from_json(const nlohmann::json& j, int64_t num_layers, const std::string& where_in) {
  const std::string where = where_in + " (attention)";
  AttentionSpec s;
  if (j.is_null()) return s;
  if (!j.is_object() || !j.contains("preset") || !j.at("preset").is_string())
    throw_input_error(where, ": expected an object with a string 'preset'");
  s.preset = j.at("preset").get<std::string>();
  if (j.contains("options")) {
    const auto& o = j.at("options");
    if (!o.is_object()) throw_input_error(where, ": 'options' must be an object");
    for (const auto& [k, v] : o.items()) s.options[k] = option_text(v, k, where);
  }
  if (j.contains("keep_softmax_layers")) {
    const auto& l = j.at("keep_softmax_layers");
    if (!l.is_array()) throw_input_error(where, ": 'keep_softmax_layers' must be an array of layer indices");
    for (const auto& x : l) {
      if (!x.is_number_integer()) throw_input_error(where, ": 'keep_softmax_layers' must hold integers");
      s.keep_softmax_layers.push_back(x.get<int64_t>());
    }
  }
  return resolve_attention_spec(s, num_layers, where);
}

std::pair<std::string, std::string> parse_option_assignment(const std::string& text, const std::string& where) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw_input_error(where, ": '", text, "' is not of the form key=value");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::vector<int64_t> parse_layer_list(const std::string& text, const std::string& where) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || x < 0)
      throw_input_error(where, ": '", text, "' is not a comma-separated list of layer indices");
    out.push_back(x);
    start = comma + 1;
  }
  return out;
}

}  // namespace linspec
