// Baseline linear attention presets: names, `key=value` options, validation, parameter initialisation and
// performer's seeded random features.
#include <cmath>
#include <cstdlib>

#include "attention/baselines/baseline_attention.h"
#include "core/option_parse.h"
#include "core/rng.h"

namespace linspec {
namespace {
struct PresetName {
  BaselinePreset preset;
  const char* name;
};
constexpr PresetName kNames[] = {{BaselinePreset::Elu, "elu"},
                                 {BaselinePreset::Relu, "relu"},
                                 {BaselinePreset::Performer, "performer"},
                                 {BaselinePreset::Cosformer, "cosformer"},
                                 {BaselinePreset::Transnormer, "transnormer"},
                                 {BaselinePreset::Hedgehog, "hedgehog"},
                                 {BaselinePreset::Yoso, "yoso"},
                                 {BaselinePreset::Window, "window"}};

std::string known_names() {
  std::string s;
  for (const auto& n : kNames) s += std::string(s.empty() ? "" : ", ") + n.name;
  return s;
}

}  // namespace

const std::vector<BaselinePreset>& all_baseline_presets() {
  static const std::vector<BaselinePreset> all = [] {
    std::vector<BaselinePreset> v;
    for (const auto& n : kNames) v.push_back(n.preset);
    return v;
  }();
  return all;
}

const char* baseline_preset_name(BaselinePreset p) {
  for (const auto& n : kNames)
    if (n.preset == p) return n.name;
  return "?";
}

bool is_baseline_preset(const std::string& name) {
  for (const auto& n : kNames)
    if (name == n.name) return true;
  return false;
}

BaselinePreset parse_baseline_preset(const std::string& name, const std::string& where) {
  for (const auto& n : kNames)
    if (name == n.name) return n.preset;
  throw_input_error(where, ": unknown linear attention preset '", name, "' (known: ", known_names(), ")");
}

void BaselineAttentionConfig::validate(const std::string& where) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw_input_error(where, ": option ", key, " must be > 0, got ", v);
  };
  positive("chunk_size", chunk);
  positive("group_size", group);
  positive("features", features);
  positive("max_len", max_len);
  positive("window", window);
  if (!(tau > 0)) throw_input_error(where, ": option tau must be > 0, got ", tau);
  if (!(eps >= 0)) throw_input_error(where, ": option eps must be >= 0, got ", eps);
  if (!(norm_eps > 0)) throw_input_error(where, ": option norm_eps must be > 0, got ", norm_eps);
  if (!std::isfinite(mix_init)) throw_input_error(where, ": option mix_init must be finite, got ", mix_init);
}

void set_baseline_attention_option(BaselineAttentionConfig& cfg, const std::string& key, const std::string& value,
                                 const std::string& where) {
  BaselineAttentionConfig c = cfg;  // cfg stays unchanged when the option is rejected
  if (key == "chunk_size")
    c.chunk = parse_option_int(where, key, value);
  else if (key == "group_size")
    c.group = parse_option_int(where, key, value);
  else if (key == "features")
    c.features = parse_option_int(where, key, value);
  else if (key == "seed")
    c.seed = parse_option_u64(where, key, value);
  else if (key == "max_len")
    c.max_len = parse_option_int(where, key, value);
  else if (key == "window")
    c.window = parse_option_int(where, key, value);
  else if (key == "tau")
    c.tau = parse_option_double(where, key, value);
  else if (key == "eps")
    c.eps = parse_option_double(where, key, value);
  else if (key == "norm_eps")
    c.norm_eps = parse_option_double(where, key, value);
  else if (key == "norm_weight")
    c.norm_weight = parse_option_bool(where, key, value);
  else if (key == "mix_init")
    c.mix_init = parse_option_double(where, key, value);
  else
    throw_input_error(where, ": unknown option '", key,
                      "' for a baseline linear attention (known: chunk_size, group_size, features, seed, max_len, "
                      "window, tau, eps, norm_eps, norm_weight, mix_init)");
  c.validate(where);
  cfg = c;
}

Tensor performer_omega(int64_t m, int64_t d, uint64_t seed, DType dtype) {
  LINSPEC_CHECK(m > 0 && d > 0, "performer_omega: m and d must be positive, got ", m, ", ", d);
  Philox rng(seed);
  std::vector<double> omega(m * d);
  std::vector<double> block(d * d);
  for (int64_t row0 = 0; row0 < m; row0 += d) {
    for (double& x : block) x = rng.normal();
    // Modified Gram–Schmidt on the rows: a Haar-distributed orthonormal block.
    for (int64_t i = 0; i < d; ++i) {
      double* bi = block.data() + i * d;
      for (int64_t j = 0; j < i; ++j) {
        const double* bj = block.data() + j * d;
        double p = 0;
        for (int64_t c = 0; c < d; ++c) p += bi[c] * bj[c];
        for (int64_t c = 0; c < d; ++c) bi[c] -= p * bj[c];
      }
      double n = 0;
      for (int64_t c = 0; c < d; ++c) n += bi[c] * bi[c];
      n = std::sqrt(n);
      for (int64_t c = 0; c < d; ++c) bi[c] /= n;
    }
    // Row norms of i.i.d. Gaussian rows (chi with d degrees of freedom) keep E[ωωᵀ] = I.
    for (int64_t i = 0; i < d; ++i) {
      double sq = 0;
      for (int64_t c = 0; c < d; ++c) {
        const double g = rng.normal();
        sq += g * g;
      }
      if (row0 + i >= m) continue;
      const double norm = std::sqrt(sq);
      for (int64_t c = 0; c < d; ++c) omega[(row0 + i) * d + c] = block[i * d + c] * norm;
    }
  }
  return Tensor::from_vector(omega, {m, d}).to(dtype);
}

int64_t baseline_feature_count(const BaselineAttentionConfig& c, int64_t head_dim) {
  switch (c.preset) {
    case BaselinePreset::Elu:
    case BaselinePreset::Relu:
    case BaselinePreset::Transnormer:
      return head_dim;
    case BaselinePreset::Performer:
      return c.features;
    case BaselinePreset::Cosformer:
    case BaselinePreset::Hedgehog:
    case BaselinePreset::Window:
      return 2 * head_dim;
    case BaselinePreset::Yoso:
      return 0;
  }
  return 0;
}

BaselineAttentionParams init_baseline_attention_params(const BaselineAttentionConfig& c, int64_t Hq, int64_t d, DType dtype) {
  c.validate();
  BaselineAttentionParams p;
  if (c.preset == BaselinePreset::Performer) p.omega = performer_omega(c.features, d, c.seed, dtype);
  if (c.preset == BaselinePreset::Hedgehog || c.preset == BaselinePreset::Window) {
    p.feature_w = Tensor::zeros({Hq, d, d}, dtype);
    Tensor eye = Tensor::zeros({Hq, d, d}, DType::F64);
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < d; ++i) eye.data<double>()[(h * d + i) * d + i] = 1.0;
    p.feature_w.copy_from(eye);
    p.feature_w.set_requires_grad(true);
    p.feature_b = Tensor::zeros({Hq, d}, dtype);
    p.feature_b.set_requires_grad(true);
  }
  if (c.preset == BaselinePreset::Window) {
    p.mix_logit = Tensor::full({Hq}, c.mix_init, dtype);
    p.mix_logit.set_requires_grad(true);
  }
  if (c.preset == BaselinePreset::Transnormer && c.norm_weight) {
    p.norm_weight = Tensor::full({Hq, d}, 1.0, dtype);
    p.norm_weight.set_requires_grad(true);
  }
  return p;
}

std::vector<std::pair<std::string, Tensor>> BaselineAttentionParams::learnable() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (feature_w.defined()) out.emplace_back("feature_w", feature_w);
  if (feature_b.defined()) out.emplace_back("feature_b", feature_b);
  if (mix_logit.defined()) out.emplace_back("mix_logit", mix_logit);
  if (norm_weight.defined()) out.emplace_back("norm_weight", norm_weight);
  return out;
}

}  // namespace linspec
