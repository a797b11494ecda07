// RoPE frequencies below must not be contracted into FMAs: they mirror HF's separately rounded f32 ops.
#pragma GCC optimize("fp-contract=off")
#include "model/config.h"

#include <cmath>

#include "core/error.h"
#include "core/file_io.h"
#include "core/size_limits.h"
#include "model/json_fields.h"

namespace linspec {

using nlohmann::json;
namespace jf = json_fields;

namespace {
// Every size of the config, its limit and its key in each source format (GGUF keys take the "<arch>." prefix).
struct SizeField {
  int64_t ModelConfig::*field;
  size_limits::Dim dim;
  const char* native_key;
  const char* hf_key;
  const char* gguf_key;
};
constexpr SizeField kSizeFields[] = {
    {&ModelConfig::vocab_size, size_limits::Dim::Vocab, "vocab_size", "vocab_size", "vocab_size"},
    {&ModelConfig::hidden_size, size_limits::Dim::Hidden, "hidden_size", "hidden_size", "embedding_length"},
    {&ModelConfig::intermediate_size, size_limits::Dim::Ffn, "intermediate_size", "intermediate_size",
     "feed_forward_length"},
    {&ModelConfig::num_layers, size_limits::Dim::Layers, "num_layers", "num_hidden_layers", "block_count"},
    {&ModelConfig::num_heads, size_limits::Dim::Heads, "num_heads", "num_attention_heads", "attention.head_count"},
    {&ModelConfig::num_kv_heads, size_limits::Dim::Heads, "num_kv_heads", "num_key_value_heads",
     "attention.head_count_kv"},
    {&ModelConfig::head_dim, size_limits::Dim::HeadDim, "head_dim", "head_dim", "attention.key_length"},
    {&ModelConfig::max_position_embeddings, size_limits::Dim::Context, "max_position_embeddings",
     "max_position_embeddings", "context_length"},
};

std::string key_name(const SizeField& f, ModelConfig::Keys keys, const std::string& arch) {
  switch (keys) {
    case ModelConfig::Keys::Hf:
      return f.hf_key;
    case ModelConfig::Keys::Gguf:
      return arch + "." + f.gguf_key;
    case ModelConfig::Keys::Native:
      break;
  }
  return f.native_key;
}
}  // namespace

void ModelConfig::validate(const std::string& where, Keys keys) const {
  for (const SizeField& f : kSizeFields)
    size_limits::check_dim(this->*f.field, f.dim, where, key_name(f, keys, architecture));
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw_input_error(where, ": '", key, "' must be positive, got ", v);
  };
  if (num_heads % num_kv_heads != 0)
    throw_input_error(where, ": num_heads (", num_heads, ") is not a multiple of num_kv_heads (", num_kv_heads, ")");
  if (head_dim % 2 != 0) throw_input_error(where, ": head_dim must be even for RoPE, got ", head_dim);
  if (!(rms_norm_eps > 0)) throw_input_error(where, ": rms_norm_eps must be positive");
  if (!(rope_theta > 0)) throw_input_error(where, ": rope_theta must be positive");
  const auto& rs = rope_scaling;
  if (rs.type != "none" && rs.type != "linear" && rs.type != "llama3")
    throw_input_error(where, ": rope scaling type '", rs.type, "' is not supported (none, linear, llama3)");
  if (rs.type != "none" && !(rs.factor > 0)) throw_input_error(where, ": rope scaling factor must be positive");
  if (rs.type == "llama3") {
    if (!(rs.high_freq_factor > rs.low_freq_factor) || !(rs.low_freq_factor > 0))
      throw_input_error(where, ": llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor");
    positive("original_max_position_embeddings", rs.original_max_position_embeddings);
  }
  for (int64_t id : eos_token_ids)
    if (id < 0 || id >= vocab_size) throw_input_error(where, ": eos token id ", id, " outside the vocabulary");
  if (bos_token_id >= vocab_size) throw_input_error(where, ": bos token id ", bos_token_id, " outside the vocabulary");
}

void to_json(json& j, const ModelConfig& c) {
  j = json{{"architecture", c.architecture},
           {"vocab_size", c.vocab_size},
           {"hidden_size", c.hidden_size},
           {"intermediate_size", c.intermediate_size},
           {"num_layers", c.num_layers},
           {"num_heads", c.num_heads},
           {"num_kv_heads", c.num_kv_heads},
           {"head_dim", c.head_dim},
           {"rms_norm_eps", c.rms_norm_eps},
           {"rope_theta", c.rope_theta},
           {"rope_scaling",
            {{"type", c.rope_scaling.type},
             {"factor", c.rope_scaling.factor},
             {"low_freq_factor", c.rope_scaling.low_freq_factor},
             {"high_freq_factor", c.rope_scaling.high_freq_factor},
             {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}}},
           {"max_position_embeddings", c.max_position_embeddings},
           {"tie_word_embeddings", c.tie_word_embeddings},
           {"attention_bias", c.attention_bias},
           {"attention_out_bias", c.attention_out_bias},
           {"bos_token_id", c.bos_token_id},
           {"eos_token_ids", c.eos_token_ids}};
  if (!c.attention.is_null()) j["attention"] = c.attention;
}

ModelConfig model_config_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  c.architecture = jf::get<std::string>(j, "architecture", where);
  c.vocab_size = jf::get<int64_t>(j, "vocab_size", where);
  c.hidden_size = jf::get<int64_t>(j, "hidden_size", where);
  c.intermediate_size = jf::get<int64_t>(j, "intermediate_size", where);
  c.num_layers = jf::get<int64_t>(j, "num_layers", where);
  c.num_heads = jf::get<int64_t>(j, "num_heads", where);
  c.num_kv_heads = jf::get<int64_t>(j, "num_kv_heads", where);
  c.head_dim = jf::get<int64_t>(j, "head_dim", where);
  c.rms_norm_eps = jf::get<double>(j, "rms_norm_eps", where);
  c.rope_theta = jf::get<double>(j, "rope_theta", where);
  const json& rs = jf::require(j, "rope_scaling", where);
  const std::string rs_where = where + " (rope_scaling)";
  c.rope_scaling.type = jf::get<std::string>(rs, "type", rs_where);
  c.rope_scaling.factor = jf::get_or<double>(rs, "factor", 1.0, rs_where);
  c.rope_scaling.low_freq_factor = jf::get_or<double>(rs, "low_freq_factor", 1.0, rs_where);
  c.rope_scaling.high_freq_factor = jf::get_or<double>(rs, "high_freq_factor", 4.0, rs_where);
  c.rope_scaling.original_max_position_embeddings =
      jf::get_or<int64_t>(rs, "original_max_position_embeddings", 0, rs_where);
  c.max_position_embeddings = jf::get<int64_t>(j, "max_position_embeddings", where);
  c.tie_word_embeddings = jf::get<bool>(j, "tie_word_embeddings", where);
  c.attention_bias = jf::get_or<bool>(j, "attention_bias", false, where);
  c.attention_out_bias = jf::get_or<bool>(j, "attention_out_bias", false, where);
  c.bos_token_id = jf::get_or<int64_t>(j, "bos_token_id", -1, where);
  if (jf::has(j, "eos_token_ids")) {
    const json& e = j.at("eos_token_ids");
    if (!e.is_array()) throw_input_error(where, ": key 'eos_token_ids': expected an array");
    for (const auto& v : e) c.eos_token_ids.push_back(jf::convert<int64_t>(v, "eos_token_ids", where));
  }
  if (jf::has(j, "attention")) c.attention = j.at("attention");
  c.validate(where);
  return c;
}

namespace {

// HF writes rope settings either in the legacy form (rope_theta + rope_scaling{type|rope_type, ...}) or, since
// transformers 5, as rope_parameters{rope_type, rope_theta, ...}.
void read_hf_rope(const json& j, const std::string& path, ModelConfig& c) {
  const json* params = nullptr;
  std::string key = "rope_scaling";
  if (jf::has(j, "rope_parameters")) {
    params = &j.at("rope_parameters");
    key = "rope_parameters";
  } else if (jf::has(j, "rope_scaling")) {
    params = &j.at("rope_scaling");
  }
  c.rope_theta = jf::get_or<double>(j, "rope_theta", 10000.0, path);
  if (!params) return;
  const std::string where = path + " (" + key + ")";
  if (!params->is_object()) throw_input_error(where, ": expected an object");
  c.rope_theta = jf::get_or<double>(*params, "rope_theta", c.rope_theta, where);
  std::string type = jf::get_or<std::string>(*params, "rope_type", "", where);
  if (type.empty()) type = jf::get_or<std::string>(*params, "type", "default", where);
  if (type == "default") return;
  if (type != "linear" && type != "llama3")
    throw_input_error(where, ": rope type '", type, "' is not supported (default, linear, llama3)");
  c.rope_scaling.type = type;
  c.rope_scaling.factor = jf::get<double>(*params, "factor", where);
  if (type == "llama3") {
    c.rope_scaling.low_freq_factor = jf::get<double>(*params, "low_freq_factor", where);
    c.rope_scaling.high_freq_factor = jf::get<double>(*params, "high_freq_factor", where);
    c.rope_scaling.original_max_position_embeddings =
        jf::get<int64_t>(*params, "original_max_position_embeddings", where);
  }
}

std::vector<int64_t> read_token_ids(const json& j, const std::string& key, const std::string& path) {
  if (!jf::has(j, key)) return {};
  const json& v = j.at(key);
  if (v.is_array()) {
    std::vector<int64_t> ids;
    for (const auto& e : v) ids.push_back(jf::convert<int64_t>(e, key, path));
    return ids;
  }
  return {jf::convert<int64_t>(v, key, path)};
}

}  // namespace

ModelConfig model_config_from_hf_json(const json& j, const std::string& path) {
  if (!j.is_object()) throw_input_error(path, ": expected a JSON object");
  const std::string arch = jf::get<std::string>(j, "model_type", path);
  if (arch != "llama" && arch != "mistral" && arch != "qwen2")
    throw_input_error(path, ": architecture '", arch,
                      "' is not supported (linspec loads LLaMA-family models: llama, mistral, qwen2)");
  ModelConfig c;
  c.architecture = arch;
  const std::string act = jf::get_or<std::string>(j, "hidden_act", "silu", path);
  if (act != "silu") throw_input_error(path, ": hidden_act '", act, "' is not supported (only silu/SwiGLU)");
  if (jf::get_or<bool>(j, "mlp_bias", false, path)) throw_input_error(path, ": mlp_bias=true is not supported");
  if (arch == "qwen2" && jf::get_or<bool>(j, "use_sliding_window", false, path))
    throw_input_error(path, ": use_sliding_window=true (sliding-window attention) is not supported");

  c.vocab_size = jf::get<int64_t>(j, "vocab_size", path);
  c.hidden_size = jf::get<int64_t>(j, "hidden_size", path);
  c.intermediate_size = jf::get<int64_t>(j, "intermediate_size", path);
  c.num_layers = jf::get<int64_t>(j, "num_hidden_layers", path);
  c.num_heads = jf::get<int64_t>(j, "num_attention_heads", path);
  c.num_kv_heads = jf::get_or<int64_t>(j, "num_key_value_heads", c.num_heads, path);
  size_limits::check_dim(c.num_heads, size_limits::Dim::Heads, path, "num_attention_heads");  // divides below
  if (jf::has(j, "head_dim")) {
    c.head_dim = jf::get<int64_t>(j, "head_dim", path);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      throw_input_error(path, ": hidden_size ", c.hidden_size, " is not a multiple of num_attention_heads ",
                        c.num_heads, " and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  c.rms_norm_eps = jf::get_or<double>(j, "rms_norm_eps", 1e-6, path);
  c.max_position_embeddings = jf::get_or<int64_t>(j, "max_position_embeddings", 2048, path);
  read_hf_rope(j, path, c);
  if (arch == "mistral" && jf::has(j, "sliding_window")) {
    int64_t window = jf::get<int64_t>(j, "sliding_window", path);
    if (window < c.max_position_embeddings)
      throw_input_error(path, ": sliding_window ", window, " < max_position_embeddings ",
                        c.max_position_embeddings, ": sliding-window attention is not supported");
  }
  c.tie_word_embeddings = jf::get_or<bool>(j, "tie_word_embeddings", false, path);
  if (arch == "qwen2") {
    c.attention_bias = true;  // Qwen2 always has q/k/v biases and no o_proj bias
  } else {
    c.attention_bias = c.attention_out_bias = jf::get_or<bool>(j, "attention_bias", false, path);
  }
  auto bos = read_token_ids(j, "bos_token_id", path);
  c.bos_token_id = bos.empty() ? -1 : bos[0];
  c.eos_token_ids = read_token_ids(j, "eos_token_id", path);
  c.validate(path, ModelConfig::Keys::Hf);
  return c;
}

ModelConfig model_config_from_hf_file(const std::string& path) {
  json j = json::parse(read_input_file(path, "an HF model directory needs config.json"), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded()) throw_input_error(path, ": not valid JSON");
  return model_config_from_hf_json(j, path);
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  const float base = static_cast<float>(c.rope_theta);
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
    float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    float p = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
    inv[i] = 1.0f / p;
  }
  const RopeScaling& rs = c.rope_scaling;
  const float factor = static_cast<float>(rs.factor);
  if (rs.type == "linear") {
    for (auto& f : inv) f = f / factor;
  } else if (rs.type == "llama3") {
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const float low_wavelen = static_cast<float>(old_len / rs.low_freq_factor);
    const float high_wavelen = static_cast<float>(old_len / rs.high_freq_factor);
    const float two_pi = static_cast<float>(2 * M_PI);
    const float old_len_f = static_cast<float>(old_len);
    const float low = static_cast<float>(rs.low_freq_factor);
    const float span = static_cast<float>(rs.high_freq_factor - rs.low_freq_factor);
    for (auto& f : inv) {
      // torch evaluates `scalar / tensor` as reciprocal(tensor) * scalar.
      const float wavelen = (1.0f / f) * two_pi;
      float scaled = wavelen > low_wavelen ? f / factor : f;
      const float smooth = ((1.0f / wavelen) * old_len_f - low) / span;
      const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      f = medium ? smoothed : scaled;
    }
  }
  return inv;
}

}  // namespace linspec
