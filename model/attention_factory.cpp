// Preset names and options -> mixers; the attention section of the model config (model/attention_spec.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/error.h"
#include "core/option_parse.h"
#include "model/attention_linear.h"

namespace linspec {
namespace {

const std::vector<std::string> kAugOptions = {"group_size", "conv_taps", "eps", "lambda_local_learnable",
                                              "lambda_global_learnable"};
const std::vector<std::string> kKernelOptions = {"chunk_size", "group_size", "features", "seed",     "max_len", "window",
                                                 "tau",        "eps",        "norm_eps", "norm_weight", "mix_init"};
constexpr int64_t kDefaultConvTaps = 32;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Shortest of %.15g / %.17g that reads back as the same double.
std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", x);
  if (std::strtod(buf, nullptr) != x) std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// A preset with its options parsed: everything the factory needs, and the resolved option list.
struct Parsed {
  enum class Family { Softmax, Aug, Kernel } family = Family::Softmax;
  AugConfig aug;
  bool ll_learnable = false, lg_learnable = true;
  KernelAttentionConfig kernel;
  bool conv = false;  // baseline + conv
  int64_t conv_taps = kDefaultConvTaps;
  std::map<std::string, std::string> resolved;
};

Parsed parse_preset(const std::string& preset, const std::map<std::string, std::string>& options,
                    const std::string& where_in) {
  const std::string where = where_in + " (attention '" + preset + "')";
  Parsed p;
  const auto& aug_names = AugConfig::preset_names();
  if (preset == "softmax") {
    if (!options.empty())
      throw_input_error(where, ": softmax attention takes no options, got '", options.begin()->first, "'");
    return p;
  }
  if (std::find(aug_names.begin(), aug_names.end(), preset) != aug_names.end()) {
    p.family = Parsed::Family::Aug;
    p.aug = AugConfig::preset(preset);
    for (const auto& [key, value] : options) {
      if (std::find(kAugOptions.begin(), kAugOptions.end(), key) == kAugOptions.end())
        throw_input_error(where, ": unknown option '", key, "' (known: ", join(kAugOptions), ")");
      if (key == "conv_taps" && !p.aug.use_conv)
        throw_input_error(where, ": option conv_taps needs a preset with the conv branch (aug, local+conv)");
      if (key == "lambda_local_learnable") {
        if (!p.aug.use_local) throw_input_error(where, ": option ", key, " needs the local branch");
        p.ll_learnable = parse_option_bool(where, key, value);
      } else if (key == "lambda_global_learnable") {
        if (!p.aug.use_global) throw_input_error(where, ": option ", key, " needs the global branch");
        p.lg_learnable = parse_option_bool(where, key, value);
      } else {
        try {
          p.aug.set(key, value);
        } catch (const InputError& e) {
          throw_input_error(where, ": ", e.what());
        }
      }
    }
    p.resolved["group_size"] = std::to_string(p.aug.group_size);
    if (p.aug.use_conv) p.resolved["conv_taps"] = std::to_string(p.aug.conv_taps);
    p.resolved["eps"] = num(p.aug.eps);
    if (p.aug.use_local) p.resolved["lambda_local_learnable"] = p.ll_learnable ? "true" : "false";
    if (p.aug.use_global) p.resolved["lambda_global_learnable"] = p.lg_learnable ? "true" : "false";
    return p;
  }
  std::string base = preset;
  if (preset.ends_with("+conv")) {
    base = preset.substr(0, preset.size() - 5);
    p.conv = true;
  }
  if (!is_kernel_preset(base)) {
    throw_input_error(where, ": unknown attention preset '", preset, "' (known: ", join(attention_preset_names()),
                      ")");
  }
  p.family = Parsed::Family::Kernel;
  p.kernel.preset = parse_kernel_preset(base, where);
  for (const auto& [key, value] : options) {
    if (key == "conv_taps") {
      if (!p.conv) throw_input_error(where, ": option conv_taps needs the conv augmentation (preset '", base, "+conv')");
      p.conv_taps = parse_option_int(where, key, value);
      if (p.conv_taps <= 0) throw_input_error(where, ": option conv_taps must be > 0, got ", p.conv_taps);
    } else if (std::find(kKernelOptions.begin(), kKernelOptions.end(), key) != kKernelOptions.end()) {
      set_kernel_attention_option(p.kernel, key, value, where);
    } else {
      throw_input_error(where, ": unknown option '", key, "' (known: ", join(kKernelOptions),
                        p.conv ? ", conv_taps" : "", ")");
    }
  }
  const KernelAttentionConfig& k = p.kernel;
  auto& r = p.resolved;
  r["chunk_size"] = std::to_string(k.chunk);
  r["eps"] = num(k.eps);
  switch (k.preset) {
    case KernelPreset::Performer: r["features"] = std::to_string(k.features), r["seed"] = std::to_string(k.seed); break;
    case KernelPreset::Cosformer: r["max_len"] = std::to_string(k.max_len); break;
    case KernelPreset::Transnormer:
      r["norm_eps"] = num(k.norm_eps), r["norm_weight"] = k.norm_weight ? "true" : "false";
      break;
    case KernelPreset::Yoso: r["group_size"] = std::to_string(k.group), r["tau"] = num(k.tau); break;
    case KernelPreset::Window: r["window"] = std::to_string(k.window), r["mix_init"] = num(k.mix_init); break;
    default: break;
  }
  if (p.conv) r["conv_taps"] = std::to_string(p.conv_taps);
  return p;
}

// Per-layer performer features: layer i draws ω from seed + i, so layers do not share one projection.
std::unique_ptr<AttentionMixer> build(const Parsed& p, const AttentionShape& shape, int64_t layer,
                                      const MixerInit& init) {
  switch (p.family) {
    case Parsed::Family::Softmax: return std::make_unique<SoftmaxAttention>(shape);
    case Parsed::Family::Aug: return std::make_unique<AugMixer>(p.aug, shape, p.ll_learnable, p.lg_learnable, init);
    case Parsed::Family::Kernel: {
      KernelAttentionConfig k = p.kernel;
      k.seed += static_cast<uint64_t>(layer);
      std::unique_ptr<AttentionMixer> m = std::make_unique<KernelMixer>(k, shape, init);
      if (p.conv) m = std::make_unique<ConvMixer>(std::move(m), p.conv_taps, init);
      return m;
    }
  }
  return nullptr;
}

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

const std::vector<std::string>& attention_preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n{"softmax"};
    for (const auto& a : AugConfig::preset_names()) n.push_back(a);
    for (KernelPreset k : all_kernel_presets()) n.push_back(kernel_preset_name(k));
    for (KernelPreset k : all_kernel_presets()) n.push_back(std::string(kernel_preset_name(k)) + "+conv");
    return n;
  }();
  return names;
}

std::unique_ptr<AttentionMixer> make_mixer(const std::string& preset, const std::map<std::string, std::string>& options,
                                           const AttentionShape& shape, int64_t layer_index, const MixerInit& init) {
  return build(parse_preset(preset, options, "attention options"), shape, layer_index, init);
}

AttentionSpec resolve_attention_spec(const AttentionSpec& spec, int64_t num_layers, const std::string& where) {
  AttentionSpec out = spec;
  out.options = parse_preset(spec.preset, spec.options, where).resolved;
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
