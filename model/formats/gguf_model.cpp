#include "model/formats/gguf_model.h"

#include <regex>

#include "core/error.h"
#include "core/size_limits.h"
#include "model/llama_tensors.h"

namespace linspec {

namespace {
bool supported_arch(const std::string& a) { return a == "llama" || a == "qwen2"; }
}  // namespace

ModelConfig gguf_model_config(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (!supported_arch(arch))
    throw_input_error(f.path(), ": architecture '", arch,
                      "' is not supported (linspec loads LLaMA-family models: llama, qwen2)");
  const std::string p = arch + ".";
  ModelConfig c;
  c.architecture = arch;
  c.num_layers = f.get_int(p + "block_count");
  c.hidden_size = f.get_int(p + "embedding_length");
  c.intermediate_size = f.get_int(p + "feed_forward_length");
  c.num_heads = f.get_int(p + "attention.head_count");
  c.num_kv_heads = f.get_int(p + "attention.head_count_kv", c.num_heads);
  size_limits::check_dim(c.num_heads, size_limits::Dim::Heads, f.path(), p + "attention.head_count");  // divides below
  c.head_dim = f.get_int(p + "attention.key_length", c.hidden_size / c.num_heads);
  if (f.has(p + "attention.value_length") && f.get_int(p + "attention.value_length") != c.head_dim)
    throw_input_error(f.path(), ": metadata key '", p, "attention.value_length' differs from the key length");
  if (f.has(p + "rope.dimension_count") && f.get_int(p + "rope.dimension_count") != c.head_dim)
    throw_input_error(f.path(), ": metadata key '", p, "rope.dimension_count': partial rotary embeddings (",
                      f.get_int(p + "rope.dimension_count"), " of ", c.head_dim, " dims) are not supported");
  c.rms_norm_eps = f.get_float(p + "attention.layer_norm_rms_epsilon");
  c.rope_theta = f.get_float(p + "rope.freq_base", 10000.0);
  c.max_position_embeddings = f.get_int(p + "context_length", 2048);

  std::string scaling = f.get_string(p + "rope.scaling.type", "none");
  double factor = f.get_float(p + "rope.scaling.factor", 1.0);
  if (f.has(p + "rope.scale_linear")) {  // older llama.cpp files
    scaling = "linear";
    factor = f.get_float(p + "rope.scale_linear");
  }
  if (scaling == "linear" && factor != 1.0) {
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = factor;
  } else if (scaling != "none" && scaling != "linear") {
    throw_input_error(f.path(), ": metadata key '", p, "rope.scaling.type': '", scaling, "' is not supported");
  }
  if (f.find_tensor("rope_freqs.weight"))
    throw_input_error(f.path(), ": tensor 'rope_freqs.weight': per-frequency RoPE factors (Llama 3.1 scaling) "
                      "are not supported from GGUF; convert the HF directory instead");

  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw_input_error(f.path(), ": missing tensor 'token_embd.weight'");
  c.vocab_size = f.get_int(p + "vocab_size", embd->ne.size() == 2 ? embd->ne[1] : 0);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.attention_out_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
  c.bos_token_id = f.get_int("tokenizer.ggml.bos_token_id", -1);
  if (f.has("tokenizer.ggml.eos_token_id")) c.eos_token_ids = {f.get_int("tokenizer.ggml.eos_token_id")};
  c.validate(f.path(), ModelConfig::Keys::Gguf);
  return c;
}

TokenizerData gguf_tokenizer(const GgufFile& f) {
  if (!f.has("tokenizer.ggml.model"))
    throw_input_error(f.path(), ": missing metadata key 'tokenizer.ggml.model' (the file carries no tokenizer)");
  const std::string model = f.get_string("tokenizer.ggml.model");
  TokenizerData t;
  if (model == "gpt2") t.type = "bpe";
  else if (model == "llama") t.type = "spm";
  else
    throw_input_error(f.path(), ": metadata key 'tokenizer.ggml.model': tokenizer '", model,
                      "' is not supported (gpt2 byte-level BPE or llama SentencePiece)");
  t.vocab = f.get_string_array("tokenizer.ggml.tokens");
  // Checked here so a bad token is reported against this file and key, not later against the output file.
  check_utf8(t.vocab, f.path(), "tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.token_type")) t.token_types = f.get_int_array("tokenizer.ggml.token_type");
  if (f.has("tokenizer.ggml.scores")) t.scores = f.get_float_array("tokenizer.ggml.scores");
  if (f.has("tokenizer.ggml.merges")) t.merges = f.get_string_array("tokenizer.ggml.merges");
  check_utf8(t.merges, f.path(), "tokenizer.ggml.merges");
  if (t.type == "bpe" && t.merges.empty())
    throw_input_error(f.path(), ": metadata key 'tokenizer.ggml.merges': a BPE tokenizer needs merges");
  t.bos_id = f.get_int("tokenizer.ggml.bos_token_id", -1);
  t.eos_id = f.get_int("tokenizer.ggml.eos_token_id", -1);
  t.unk_id = f.get_int("tokenizer.ggml.unknown_token_id", -1);
  t.pad_id = f.get_int("tokenizer.ggml.padding_token_id", -1);
  t.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", t.type == "spm");
  t.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", false);
  t.pre = f.get_string("tokenizer.ggml.pre", "default");
  t.chat_template = f.get_string("tokenizer.chat_template", "");
  check_utf8({t.chat_template}, f.path(), "tokenizer.chat_template");
  t.validate(f.path() + " (tokenizer.ggml.*)");
  return t;
}

std::string gguf_to_linspec_name(const std::string& name) {
  static const std::map<std::string, std::string> globals = {
      {"token_embd.weight", "embed_tokens.weight"},
      {"output_norm.weight", "norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  static const std::map<std::string, std::string> per_layer = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},     {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"},     {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  if (auto it = globals.find(name); it != globals.end()) return it->second;
  static const std::regex block(R"(blk\.(\d+)\.(.+))");
  std::smatch m;
  if (!std::regex_match(name, m, block)) return "";
  auto it = per_layer.find(m[2].str());
  if (it == per_layer.end()) return "";
  return "layers." + m[1].str() + "." + it->second;
}

Tensor unpermute_rope_rows(const Tensor& w, int64_t head_dim) {
  LINSPEC_CHECK(w.dtype() == DType::F32 && w.is_contiguous(), "unpermute_rope_rows: contiguous f32 expected");
  const int64_t rows = w.size(0), cols = w.dim() > 1 ? w.numel() / rows : 1, half = head_dim / 2;
  LINSPEC_CHECK(rows % head_dim == 0, "unpermute_rope_rows: ", rows, " rows, head_dim ", head_dim);
  Tensor out = Tensor::empty(w.shape(), DType::F32);
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t h = 0; h < rows / head_dim; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t from = h * head_dim + 2 * i + j, to = h * head_dim + j * half + i;
        std::copy_n(src + from * cols, cols, dst + to * cols);
      }
  return out;
}

namespace {
// Every tensor's shape is checked against the config before anything is dequantised, so a forged or inconsistent
// header (key_length vs q rows, embedding_length vs the embedding) is reported by name instead of tripping an
// internal check, and the whole load's bytes are checked against memory first.
void check_gguf_tensors(const GgufFile& f, const ModelConfig& c, DType dtype) {
  const auto expected = llama_tensor_shapes(c);
  size_limits::LoadBudget budget(f.path());
  for (const auto& info : f.tensors()) {
    const std::string name = gguf_to_linspec_name(info.name);
    if (name.empty()) throw_input_error(f.path(), ": tensor '", info.name, "' is not part of a LLaMA-family model");
    check_llama_tensor_shape(expected, c, name, info.shape(), f.path(), info.name);
    budget.reserve(static_cast<uint64_t>(info.numel) * dtype_size(dtype), "tensor '" + info.name + "'");
  }
}
}  // namespace

Checkpoint load_gguf_model(const std::string& path, DType dtype) {
  LINSPEC_CHECK(dtype == DType::F32 || dtype == DType::BF16, "load_gguf_model: f32 or bf16");
  GgufFile f(path);
  Checkpoint ck;
  ck.config = gguf_model_config(f);
  ck.tokenizer = gguf_tokenizer(f);
  if (static_cast<int64_t>(ck.tokenizer.vocab.size()) > ck.config.vocab_size)
    throw_input_error(path, ": tokenizer has ", ck.tokenizer.vocab.size(), " tokens but the model vocabulary is ",
                      ck.config.vocab_size);
  check_gguf_tensors(f, ck.config, dtype);
  // llama.cpp permutes Q/K only for its "llama" architecture (interleaved RoPE); qwen2 is stored as in HF.
  const bool permuted = ck.config.architecture == "llama";
  for (const auto& info : f.tensors()) {
    const std::string name = gguf_to_linspec_name(info.name);
    Tensor t = f.dequantize(info);
    const bool rope_rows =
        name.find("self_attn.q_proj") != std::string::npos || name.find("self_attn.k_proj") != std::string::npos;
    if (permuted && rope_rows) t = unpermute_rope_rows(t, ck.config.head_dim);
    ck.tensors[name] = dtype == DType::F32 ? t : t.to(dtype);
  }
  check_llama_tensors(ck.config, ck.tensors, path);
  ck.extra_attrs["source_format"] = "gguf";
  ck.extra_attrs["source"] = path;
  return ck;
}

}  // namespace linspec
