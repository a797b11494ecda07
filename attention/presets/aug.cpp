// The seed's augmented linear attention ("aug": local + global + conv branches) and its ablations, which keep a
// subset of the branches: local, global, local+global, local+conv (docs/method.md §1).
#include "attention/linear_mixers.h"
#include "attention/registry.h"

namespace linspec {

AttentionPreset aug_preset(const std::string& name) {
  const AugConfig branches = AugConfig::preset(name);  // InputError for a name that is not an aug preset
  const AugConfig defaults;
  AttentionPreset p;
  p.name = name;
  std::string parts;
  auto add = [&](bool on, const char* what) {
    if (on) parts += (parts.empty() ? "" : " + ") + std::string(what);
  };
  add(branches.use_local, "local (causal attention within each group of G tokens)");
  add(branches.use_global, "global (linear attention over the complete past groups)");
  add(branches.use_conv, "causal conv on V");
  p.summary = "augmented linear attention: " + parts;
  p.trains = std::string(branches.use_global ? "λ_global; " : "") + (branches.use_conv ? "conv taps [Hq, C]; " : "") +
             (branches.use_local ? "λ_local when lambda_local_learnable=true" : "");
  p.options.push_back({"group_size", OptionType::Int, std::to_string(defaults.group_size), 1, 1 << 20, false,
                       "G: tokens per group (the local branch's span)"});
  if (branches.use_conv)
    p.options.push_back({"conv_taps", OptionType::Int, std::to_string(defaults.conv_taps), 1, 4096, false,
                         "C: causal taps of the conv on V"});
  p.options.push_back({"eps", OptionType::Number, option_number_text(defaults.eps), 0, INFINITY, false,
                       "epsilon of the L2 normalisation of q and k"});
  if (branches.use_local)
    p.options.push_back({"lambda_local_learnable", OptionType::Bool, "false", -INFINITY, INFINITY, false,
                         "train λ_local (initialised to 1)"});
  if (branches.use_global) {
    p.options.push_back({"lambda_global_learnable", OptionType::Bool, "true", -INFINITY, INFINITY, false,
                         "train λ_global (initialised to 0)"});
    p.options.push_back({"global_mean", OptionType::Bool, "false", -INFINITY, INFINITY, false,
                         "divide the global term by the tokens it sums over (g(t)·G), so it does not grow with the "
                         "context (linspec extension; false = the seed's sum)"});
  }
  p.make = [branches](const PresetOptions& o, const AttentionShape& shape, int64_t, const MixerInit& init) {
    AugConfig cfg = branches;
    cfg.group_size = o.integer("group_size");
    if (cfg.use_conv) cfg.conv_taps = o.integer("conv_taps");
    cfg.eps = o.number("eps");
    if (cfg.use_global) cfg.global_mean = o.flag("global_mean");
    const bool ll = cfg.use_local && o.flag("lambda_local_learnable");
    const bool lg = cfg.use_global && o.flag("lambda_global_learnable");
    return std::unique_ptr<AttentionMixer>(std::make_unique<AugMixer>(cfg, shape, ll, lg, init));
  };
  return p;
}

}  // namespace linspec
