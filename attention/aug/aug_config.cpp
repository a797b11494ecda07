// AugConfig: presets, `--set key=value` overrides and validation.
#include <cstdlib>

#include "attention/aug/aug_attention.h"
#include "core/option_parse.h"

namespace linspec {
namespace {
struct Preset {
  const char* name;
  bool local, global, conv;
};
constexpr Preset kPresets[] = {{"local", true, false, false},
                               {"global", false, true, false},
                               {"local+global", true, true, false},
                               {"local+conv", true, false, true},
                               {"aug", true, true, true}};

}  // namespace

AugConfig AugConfig::preset(const std::string& name) {
  for (const Preset& p : kPresets)
    if (name == p.name) {
      AugConfig c;
      c.use_local = p.local, c.use_global = p.global, c.use_conv = p.conv;
      return c;
    }
  std::string known;
  for (const Preset& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  throw_input_error("unknown aug attention preset '", name, "' (known: ", known, ")");
}

const std::vector<std::string>& AugConfig::preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Preset& p : kPresets) n.push_back(p.name);
    return n;
  }();
  return names;
}

std::string AugConfig::preset_name() const {
  for (const Preset& p : kPresets)
    if (p.local == use_local && p.global == use_global && p.conv == use_conv) return p.name;
  return "custom";
}

void AugConfig::set(const std::string& key, const std::string& value) {
  AugConfig next = *this;  // a rejected value leaves the config unchanged
  if (key == "group_size") {
    next.group_size = parse_option_int("aug attention options", key, value);
  } else if (key == "conv_taps") {
    next.conv_taps = parse_option_int("aug attention options", key, value);
  } else if (key == "eps") {
    char* end = nullptr;
    next.eps = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') throw_input_error("aug attention option eps: '", value, "' is not a number");
  } else if (key == "global_mean") {
    next.global_mean = parse_option_bool("aug attention options", key, value);
  } else {
    throw_input_error("unknown aug attention option '", key, "' (known: group_size, conv_taps, eps, global_mean)");
  }
  next.validate();
  *this = next;
}

void AugConfig::validate() const {
  if (group_size <= 0) throw_input_error("aug attention: group_size must be > 0, got ", group_size);
  if (conv_taps <= 0) throw_input_error("aug attention: conv_taps must be > 0, got ", conv_taps);
  if (!(eps >= 0)) throw_input_error("aug attention: eps must be >= 0, got ", eps);
  if (!use_local && !use_global && !use_conv) throw_input_error("aug attention: no branch enabled");
}

}  // namespace linspec
