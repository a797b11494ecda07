// The preset table (attention/registry.h): registration, the `+conv` variants, option parsing and --help text.
#include "attention/registry.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "attention/linear_mixers.h"
#include "attention/presets/builtin.h"
#include "core/error.h"
#include "core/option_parse.h"

namespace linspec {
namespace {

struct Registry {
  std::vector<AttentionPreset> presets;
  bool builtins_added = false;
};

Registry& registry() {
  static Registry r;
  if (!r.builtins_added) {
    r.builtins_added = true;  // before the calls: register_attention_preset comes back here
    register_builtin_attention_presets();
  }
  return r;
}

std::string known_presets() {
  std::string s;
  for (const auto& p : attention_presets()) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

std::string option_names(const AttentionPreset& p) {
  std::string s;
  for (const auto& o : p.options) s += (s.empty() ? "" : ", ") + o.name;
  return s.empty() ? "none" : s;
}

const char* type_name(OptionType t) {
  switch (t) {
    case OptionType::Int:
      return "int";
    case OptionType::UInt:
      return "uint";
    case OptionType::Number:
      return "number";
    case OptionType::Bool:
      return "bool";
  }
  return "?";
}

// Parses `text` as the option's type and checks its range; returns the canonical text.
std::string canonical_value(const PresetOption& o, const std::string& text, const std::string& where) {
  double x = 0;
  std::string out;
  switch (o.type) {
    case OptionType::Int: {
      const int64_t v = parse_option_int(where, o.name, text);
      x = static_cast<double>(v), out = std::to_string(v);
      break;
    }
    case OptionType::UInt: {
      const uint64_t v = parse_option_u64(where, o.name, text);
      x = static_cast<double>(v), out = std::to_string(v);
      break;
    }
    case OptionType::Number:
      x = parse_option_double(where, o.name, text);
      if (!std::isfinite(x)) throw_input_error(where, ": option ", o.name, " must be finite, got '", text, "'");
      out = option_number_text(x);
      break;
    case OptionType::Bool:
      return parse_option_bool(where, o.name, text) ? "true" : "false";
  }
  const bool below = o.min_exclusive ? !(x > o.min) : !(x >= o.min);
  if (below || !(x <= o.max)) throw_input_error(where, ": option ", describe_option(o), " got ", out);
  return out;
}

// "<base>+conv": the base preset's mixer wrapped in the seed's causal conv on V.
AttentionPreset conv_variant_of(const AttentionPreset& base) {
  AttentionPreset p;
  p.name = base.name + "+conv";
  p.summary = base.summary + ", plus the seed's causal depthwise conv on V";
  p.trains = base.trains + "; conv taps [Hq, C]";
  p.options = base.options;
  p.options.push_back({"conv_taps", OptionType::Int, std::to_string(AugConfig{}.conv_taps), 1, 4096, false,
                       "C: causal taps of the conv on V (the current token and C−1 past ones)"});
  p.check = base.check;
  p.make = [make = base.make](const PresetOptions& o, const AttentionShape& shape, int64_t layer,
                              const MixerInit& init) -> std::unique_ptr<AttentionMixer> {
    return std::make_unique<ConvMixer>(make(o, shape, layer, init), o.integer("conv_taps"), init);
  };
  return p;
}

}  // namespace

const std::string& PresetOptions::at(const std::string& name) const {
  const auto it = values_.find(name);
  LINSPEC_CHECK(it != values_.end(), "preset option '", name, "' is not one of the preset's options");
  return it->second;
}
int64_t PresetOptions::integer(const std::string& name) const { return parse_option_int("preset", name, at(name)); }
uint64_t PresetOptions::unsigned_integer(const std::string& name) const {
  return parse_option_u64("preset", name, at(name));
}
double PresetOptions::number(const std::string& name) const { return parse_option_double("preset", name, at(name)); }
bool PresetOptions::flag(const std::string& name) const { return parse_option_bool("preset", name, at(name)); }

void register_attention_preset(AttentionPreset preset) {
  Registry& r = registry();
  LINSPEC_CHECK(!preset.name.empty() && preset.make, "attention preset '", preset.name, "' needs a name and a make()");
  LINSPEC_CHECK(!find_attention_preset(preset.name), "attention preset '", preset.name, "' is registered twice");
  for (const auto& o : preset.options) canonical_value(o, o.default_value, "preset " + preset.name + " default");
  const bool conv = preset.conv_variant;
  if (conv) LINSPEC_CHECK(!find_attention_preset(preset.name + "+conv"), "preset ", preset.name, "+conv exists");
  r.presets.push_back(preset);
  if (conv) r.presets.push_back(conv_variant_of(preset));
}

const std::vector<AttentionPreset>& attention_presets() { return registry().presets; }

const AttentionPreset* find_attention_preset(const std::string& name) {
  for (const auto& p : attention_presets())
    if (p.name == name) return &p;
  return nullptr;
}

const AttentionPreset& attention_preset(const std::string& name, const std::string& where) {
  const AttentionPreset* p = find_attention_preset(name);
  if (!p) throw_input_error(where, ": unknown attention preset '", name, "' (known: ", known_presets(), ")");
  return *p;
}

PresetOptions parse_preset_options(const AttentionPreset& preset, const std::map<std::string, std::string>& given,
                                   const std::string& where_in) {
  const std::string where = where_in + " (attention '" + preset.name + "')";
  for (const auto& [key, value] : given) {
    bool known = false;
    for (const auto& o : preset.options) known = known || o.name == key;
    if (!known) throw_input_error(where, ": unknown option '", key, "' (its options: ", option_names(preset), ")");
  }
  std::map<std::string, std::string> values;
  for (const auto& o : preset.options) {
    const auto it = given.find(o.name);
    values[o.name] = canonical_value(o, it == given.end() ? o.default_value : it->second, where);
  }
  PresetOptions out(std::move(values));
  if (preset.check) preset.check(out, where);
  return out;
}

std::string describe_option(const PresetOption& o) {
  std::ostringstream s;
  s << o.name << " (" << type_name(o.type);
  const bool has_min = std::isfinite(o.min) && !(o.type == OptionType::UInt && o.min == 0);
  if (o.type != OptionType::Bool && has_min) s << (o.min_exclusive ? " > " : " ≥ ") << option_number_text(o.min);
  if (o.type != OptionType::Bool && std::isfinite(o.max))
    s << (has_min ? ", " : " ") << "≤ " << option_number_text(o.max);
  s << ", default " << o.default_value << ")";
  return s.str();
}

std::string attention_presets_help() {
  std::ostringstream s;
  for (const auto& p : attention_presets()) {
    s << "  " << p.name << ": " << p.summary << "\n      trains: " << p.trains << "\n";
    for (const auto& o : p.options)
      s << "      " << describe_option(o) << (o.help.empty() ? "" : ": ") << o.help << "\n";
  }
  return s.str();
}

}  // namespace linspec
