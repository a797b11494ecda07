#include "model/formats/hf_export.h"

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "attention/spec.h"
#include "model/formats/safetensors_writer.h"
#include "model/llama_tensors.h"

namespace linspec {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json hf_rope_scaling(const RopeScaling& rs) {
  if (rs.type == "none") return nullptr;
  json j{{"rope_type", rs.type}, {"factor", rs.factor}};
  if (rs.type == "llama3") {
    j["low_freq_factor"] = rs.low_freq_factor;
    j["high_freq_factor"] = rs.high_freq_factor;
    j["original_max_position_embeddings"] = rs.original_max_position_embeddings;
  }
  return j;
}

void fsync_dir(const fs::path& dir) {
  // write_file_synced covers the files; this makes the directory entries durable. Best effort.
  if (FILE* f = std::fopen(dir.c_str(), "r")) {
    ::fsync(fileno(f));
    std::fclose(f);
  }
}

}  // namespace

json hf_config_json(const ModelConfig& c, DType dtype) {
  const bool qwen2 = c.architecture == "qwen2";
  json j{{"architectures", {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
         {"model_type", qwen2 ? "qwen2" : "llama"},
         {"vocab_size", c.vocab_size},
         {"hidden_size", c.hidden_size},
         {"intermediate_size", c.intermediate_size},
         {"num_hidden_layers", c.num_layers},
         {"num_attention_heads", c.num_heads},
         {"num_key_value_heads", c.num_kv_heads},
         {"head_dim", c.head_dim},
         {"hidden_act", "silu"},
         {"rms_norm_eps", c.rms_norm_eps},
         {"rope_theta", c.rope_theta},
         {"rope_scaling", hf_rope_scaling(c.rope_scaling)},
         {"max_position_embeddings", c.max_position_embeddings},
         {"tie_word_embeddings", c.tie_word_embeddings},
         {"torch_dtype", dtype == DType::BF16 ? "bfloat16" : "float32"},
         {"bos_token_id", c.bos_token_id >= 0 ? json(c.bos_token_id) : json(nullptr)},
         {"use_cache", true}};
  if (qwen2) j["use_sliding_window"] = false;
  else {
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = false;
  }
  if (c.eos_token_ids.empty()) j["eos_token_id"] = nullptr;
  else if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else j["eos_token_id"] = c.eos_token_ids;
  return j;
}

void check_hf_exportable(const Checkpoint& ck, const std::string& where) {
  const ModelConfig& c = ck.config;
  if (!c.attention.is_null()) {
    const AttentionSpec spec = attention_spec_from_json(c.attention, c.num_layers, where + " (/config model)");
    for (int64_t l = 0; l < c.num_layers; ++l)
      if (!spec.is_softmax() && !spec.keeps_softmax(l))
        throw_input_error(where, ": layer ", l, " runs '", spec.preset,
                          "' linear attention; an HF directory (LlamaForCausalLM) can only hold softmax layers. "
                          "Export a serving checkpoint with --out instead");
  }
  // HF LLaMA has one attention_bias for q, k, v and o; Qwen2 has q/k/v biases only.
  if (c.architecture == "qwen2" ? (!c.attention_bias || c.attention_out_bias) : c.attention_bias != c.attention_out_bias)
    throw_input_error(where, ": ", c.architecture, " model with q/k/v bias ", c.attention_bias, " and o_proj bias ",
                      c.attention_out_bias, " has no HF config equivalent");
  check_llama_tensors(c, ck.tensors, where);
}

void write_hf_directory(const Checkpoint& ck, const std::string& dir_arg, DType dtype, const std::string& where,
                        bool overwrite, const std::map<std::string, std::string>& extra_files) {
  LINSPEC_CHECK(dtype == DType::F32 || dtype == DType::BF16, "write_hf_directory: f32 or bf16");
  check_hf_exportable(ck, where);
  fs::path dir = fs::path(dir_arg).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "out/" -> "out"
  if (fs::exists(dir) && !overwrite) throw_input_error(dir.string(), ": already exists (pass --force to replace it)");

  const fs::path tmp = dir.string() + ".tmp." + std::to_string(::getpid());
  const fs::path old = dir.string() + ".old." + std::to_string(::getpid());
  try {
    fs::remove_all(tmp);
    std::error_code ec;
    if (!fs::create_directories(tmp, ec))
      throw_input_error(dir.string(), ": cannot create the directory ", tmp.string(), ": ", ec.message());
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, t] : ck.tensors) tensors[hf_tensor_name(name)] = t.to(dtype);
    write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
    const std::string config = hf_config_json(ck.config, dtype).dump(2) + "\n";
    write_file_synced((tmp / "config.json").string(), {config});
    for (const auto& [name, contents] : extra_files) {
      LINSPEC_CHECK(fs::path(name).filename() == name && name != "config.json" && name != "model.safetensors",
                    "write_hf_directory: bad extra file name '", name, "'");
      write_file_synced((tmp / name).string(), {contents});
    }
    fsync_dir(tmp);
    if (fs::exists(dir)) fs::rename(dir, old);  // only with overwrite
    fs::rename(tmp, dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    if (!fs::exists(dir) && fs::exists(old)) fs::rename(old, dir, ec);  // put the replaced directory back
    try {
      throw;
    } catch (const fs::filesystem_error& e) {
      throw_input_error(dir.string(), ": ", e.what());
    }
  }
  std::error_code ec;
  fs::remove_all(old, ec);
  fsync_dir(dir.parent_path().empty() ? fs::path(".") : dir.parent_path());
}

}  // namespace linspec
