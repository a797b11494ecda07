// The baseline linear attentions (docs/method.md §2): elu, relu, performer, cosformer, transnormer, yoso,
// hedgehog, window — each with a `+conv` variant. Their forms are in attention/baselines/; this file says which
// options each one takes and what it trains.
#include "attention/linear_mixers.h"
#include "attention/registry.h"

namespace linspec {
namespace {

struct BaselineInfo {
  const char* summary;
  const char* trains;
  std::vector<std::string> extra_options;  // beyond chunk_size and eps
};

BaselineInfo info(BaselinePreset which) {
  switch (which) {
    case BaselinePreset::Elu:
      return {"kernel linear attention with φ = elu + 1", "nothing (no parameters)", {}};
    case BaselinePreset::Relu:
      return {"kernel linear attention with φ = relu", "nothing (no parameters)", {}};
    case BaselinePreset::Performer:
      return {"FAVOR+ positive random features, ω drawn from seed + layer",
              "nothing (ω is fixed by the seed)",
              {"features", "seed"}};
    case BaselinePreset::Cosformer:
      return {"relu features with cos re-weighting of the distance", "nothing (no parameters)", {"max_len"}};
    case BaselinePreset::Transnormer:
      return {"elu + 1 without denominator, RMSNorm on the output",
              "the RMSNorm weight when norm_weight=true",
              {"norm_eps", "norm_weight"}};
    case BaselinePreset::Yoso:
      return {"angular-kernel attention within groups of G tokens", "nothing (no parameters)", {"group_size", "tau"}};
    case BaselinePreset::Hedgehog:
      return {"learnable softmax feature map [softmax(xW + b), softmax(−(xW + b))]",
              "feature map W [Hq, d, d], b [Hq, d]",
              {}};
    case BaselinePreset::Window:
      return {"softmax over a sliding window plus hedgehog linear attention beyond it",
              "feature map W, b and the mixing logit [Hq]",
              {"window", "mix_init"}};
  }
  return {};
}

// Every baseline option with its type, range and the default of BaselineAttentionConfig.
PresetOption option(const std::string& name) {
  const BaselineAttentionConfig d;
  auto num = [](double x) { return option_number_text(x); };
  if (name == "chunk_size")
    return {name, OptionType::Int, std::to_string(d.chunk), 1, 1 << 20, false, "parallel block size"};
  if (name == "eps") return {name, OptionType::Number, num(d.eps), 0, INFINITY, false, "denominator epsilon"};
  if (name == "features")
    return {name, OptionType::Int, std::to_string(d.features), 1, 65536, false, "m random features"};
  if (name == "seed")
    return {name, OptionType::UInt, std::to_string(d.seed), 0, INFINITY, false, "seed of ω (layer i: seed + i)"};
  if (name == "max_len")
    return {name, OptionType::Int, std::to_string(d.max_len), 1, INFINITY, false, "M of the re-weighting"};
  if (name == "norm_eps") return {name, OptionType::Number, num(d.norm_eps), 0, INFINITY, true, "RMSNorm epsilon"};
  if (name == "norm_weight")
    return {name,  OptionType::Bool,          d.norm_weight ? "true" : "false", -INFINITY, INFINITY,
            false, "learnable RMSNorm weight"};
  if (name == "group_size")
    return {name, OptionType::Int, std::to_string(d.group), 1, 1 << 20, false, "G: tokens per group"};
  if (name == "tau")
    return {name, OptionType::Number, num(d.tau), 0, INFINITY, true, "exponent τ of the angular kernel"};
  if (name == "window")
    return {name, OptionType::Int, std::to_string(d.window), 1, INFINITY, false, "W: softmax window"};
  if (name == "mix_init")
    return {name, OptionType::Number, num(d.mix_init), -INFINITY, INFINITY, false, "initial mixing logit (σ ≈ 0.1)"};
  LINSPEC_CHECK(false, "no baseline option '", name, "'");
  return {};
}

}  // namespace

AttentionPreset baseline_preset(BaselinePreset which) {
  const BaselineInfo i = info(which);
  AttentionPreset p;
  p.name = baseline_preset_name(which);
  p.summary = i.summary;
  p.trains = i.trains;
  p.conv_variant = true;
  p.options = {option("chunk_size"), option("eps")};
  for (const auto& name : i.extra_options) p.options.push_back(option(name));
  p.make = [which, names = p.options](const PresetOptions& o, const AttentionShape& shape, int64_t layer,
                                      const MixerInit& init) {
    BaselineAttentionConfig cfg;
    cfg.preset = which;
    for (const auto& opt : names) set_baseline_attention_option(cfg, opt.name, o.values().at(opt.name));
    cfg.seed += static_cast<uint64_t>(layer);  // performer: layers do not share one projection
    return std::unique_ptr<AttentionMixer>(std::make_unique<BaselineMixer>(cfg, shape, init));
  };
  return p;
}

}  // namespace linspec
