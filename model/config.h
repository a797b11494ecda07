// Hyper-parameters of a LLaMA-family decoder (LLaMA, Mistral without sliding window, Qwen2), read from HF
// config.json or GGUF metadata and stored as JSON in every native checkpoint.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linspec {

struct RopeScaling {
  std::string type = "none";  // none | linear | llama3
  double factor = 1.0;        // linear and llama3
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  std::string architecture = "llama";  // the source's model_type: llama | mistral | qwen2
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;      // biases on q/k/v projections (Qwen2; LLaMA attention_bias)
  bool attention_out_bias = false;  // bias on o_proj (LLaMA attention_bias only; Qwen2 has none)
  int64_t bos_token_id = -1;        // -1: none
  std::vector<int64_t> eos_token_ids;
  // The "attention" section (attention/spec.h: preset, resolved options, softmax layers kept); null when
  // every layer keeps the pretrained softmax attention. Parsed and validated by the model, not here.
  nlohmann::json attention;

  // Which file format's key names validate() uses in its messages (the config was read from that format).
  enum class Keys { Native, Hf, Gguf };
  // Throws InputError("<where>: ...") on inconsistent values (heads not dividing, odd head_dim, ...) and on sizes
  // outside the architecture limits (core/size_limits.h), naming the key as the source file spells it.
  void validate(const std::string& where, Keys keys = Keys::Native) const;
};

void to_json(nlohmann::json& j, const ModelConfig& c);
// Throws InputError naming the missing or mistyped key; `where` names the file (or checkpoint) for the message.
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where);
inline void from_json(const nlohmann::json& j, ModelConfig& c) { c = model_config_from_json(j, "model config"); }

// HF config.json (model_type llama, mistral, qwen2). Other architectures are refused with an InputError that
// names the file and the architecture.
ModelConfig model_config_from_hf_json(const nlohmann::json& j, const std::string& path);
ModelConfig model_config_from_hf_file(const std::string& config_json_path);

// RoPE inverse frequencies (head_dim/2 values) for the configured scaling, computed in f32 in the same order of
// operations as HF transformers' rope init functions (default, linear, llama3).
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace linspec
