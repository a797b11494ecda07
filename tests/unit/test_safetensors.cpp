// HF directories: safetensors parsing and validation, single and sharded weights, config.json (accepted and
// refused architectures), tokenizer.json byte-level BPE and SentencePiece tokenizer.model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/formats/hf_tokenizer.h"
#include "model/formats/safetensors.h"
#include "model/formats/sentencepiece_model.h"
#include "model/llama_tensors.h"
#include "tests/unit/format_test_util.h"

namespace linspec {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::put;
using testing::temp_path;
using testing::write_file;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

// ---- writing safetensors files ----
std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string s;
  put<uint64_t>(s, header.size());
  return s + header + data;
}

struct Entry {
  std::string name;
  std::string dtype;  // F32 | BF16 | F16
  Shape shape;
  std::vector<float> values;
};

std::string encode(const Entry& e) {
  std::string b;
  for (float v : e.values) {
    if (e.dtype == "F32") put(b, v);
    else if (e.dtype == "BF16") put(b, f32_to_bf16(v));
    else put(b, f32_to_f16(v));
  }
  return b;
}

std::string safetensors(const std::vector<Entry>& entries) {
  json header = {{"__metadata__", {{"format", "pt"}}}};
  std::string data;
  for (const auto& e : entries) {
    const std::string b = encode(e);
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {data.size(), data.size() + b.size()}}};
    data += b;
  }
  return raw_safetensors(header.dump(), data);
}

std::vector<float> ramp(int64_t n, float base) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = base + 0.5f * static_cast<float>(i);  // exact in f16 and bf16
  return v;
}

// A tiny LLaMA: 1 layer, hidden 8, 2 heads of 4, 1 KV head, FFN 12, vocab 6, untied; dtypes mixed.
std::vector<Entry> tiny_entries(bool with_head = true) {
  std::vector<Entry> e = {
      {"model.embed_tokens.weight", "BF16", {6, 8}, ramp(48, -4)},
      {"model.norm.weight", "F32", {8}, ramp(8, 1)},
      {"model.layers.0.input_layernorm.weight", "F16", {8}, ramp(8, 2)},
      {"model.layers.0.post_attention_layernorm.weight", "F32", {8}, ramp(8, 3)},
      {"model.layers.0.self_attn.q_proj.weight", "F32", {8, 8}, ramp(64, 4)},
      {"model.layers.0.self_attn.k_proj.weight", "F32", {4, 8}, ramp(32, 5)},
      {"model.layers.0.self_attn.v_proj.weight", "F32", {4, 8}, ramp(32, 6)},
      {"model.layers.0.self_attn.o_proj.weight", "F32", {8, 8}, ramp(64, 7)},
      {"model.layers.0.mlp.gate_proj.weight", "F32", {12, 8}, ramp(96, 8)},
      {"model.layers.0.mlp.up_proj.weight", "F32", {12, 8}, ramp(96, 9)},
      {"model.layers.0.mlp.down_proj.weight", "F32", {8, 12}, ramp(96, 10)},
      {"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {2}, {1, 0.5}},
  };
  if (with_head) e.push_back({"lm_head.weight", "F32", {6, 8}, ramp(48, 11)});
  return e;
}

json tiny_config() {
  return {{"model_type", "llama"},       {"vocab_size", 6},        {"hidden_size", 8},
          {"intermediate_size", 12},     {"num_hidden_layers", 1}, {"num_attention_heads", 2},
          {"num_key_value_heads", 1},    {"rms_norm_eps", 1e-5},   {"rope_theta", 10000.0},
          {"max_position_embeddings", 64}, {"tie_word_embeddings", false}, {"bos_token_id", 3},
          {"eos_token_id", 4},           {"hidden_act", "silu"}};
}

json tiny_tokenizer_json() {
  return {{"model",
           {{"type", "BPE"},
            {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"\xc4\xa0", 5}}},
            {"merges", json::array({json::array({"a", "b"})})}}},
          {"added_tokens",
           {{{"id", 3}, {"content", "<|im_start|>"}, {"special", true}},
            {{"id", 4}, {"content", "<|im_end|>"}, {"special", true}}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Digits"}, {"individual_digits", true}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}}}}},
          {"decoder", {{"type", "ByteLevel"}}}};
}

std::string make_dir(const std::string& name) {
  const std::string dir = temp_path(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
void write_json(const std::string& path, const json& j) { write_file(path, j.dump(1)); }

std::string tiny_dir(const std::string& name, const json& config = tiny_config()) {
  const std::string dir = make_dir(name);
  write_json(dir + "/config.json", config);
  write_file(dir + "/model.safetensors", safetensors(tiny_entries()));
  write_json(dir + "/tokenizer.json", tiny_tokenizer_json());
  write_json(dir + "/tokenizer_config.json", {{"eos_token", "<|im_end|>"}, {"add_bos_token", false}});
  return dir;
}

// ---- tests ----
TEST(HfModel, SingleFileLoadsAndConverts) {
  const Checkpoint ck = load_hf_model(tiny_dir("hf_single"));
  EXPECT_EQ(ck.config.num_kv_heads, 1);
  EXPECT_EQ(ck.config.head_dim, 4);
  EXPECT_EQ(ck.tensors.size(), 12u);  // 11 + lm_head, without the rotary buffer
  EXPECT_EQ(ck.tensors.at("embed_tokens.weight").to_vector<float>(), ramp(48, -4));  // from BF16
  EXPECT_EQ(ck.tensors.at("layers.0.input_layernorm.weight").to_vector<float>(), ramp(8, 2));  // from F16
  EXPECT_EQ(ck.tensors.at("lm_head.weight").to_vector<float>(), ramp(48, 11));
  EXPECT_EQ(ck.tensors.at("layers.0.mlp.down_proj.weight").shape(), (Shape{8, 12}));
  const TokenizerData& t = ck.tokenizer;
  EXPECT_EQ(t.type, "bpe");
  EXPECT_EQ(t.vocab, (std::vector<std::string>{"a", "b", "ab", "<|im_start|>", "<|im_end|>", "\xc4\xa0"}));
  EXPECT_EQ(t.merges, (std::vector<std::string>{"a b"}));
  EXPECT_EQ(t.token_types[3], kTokenControl);
  EXPECT_EQ(t.token_types[0], kTokenNormal);
  EXPECT_EQ(t.pre, "smollm");
  EXPECT_EQ(t.eos_id, 4);  // named by tokenizer_config.json
  EXPECT_EQ(t.bos_id, 3);  // from config.json
  EXPECT_FALSE(t.add_bos);
  const Checkpoint bf = load_hf_model(tiny_dir("hf_single_bf16"), DType::BF16);
  EXPECT_EQ(bf.tensors.at("norm.weight").dtype(), DType::BF16);
  EXPECT_EQ(bf.tensors.at("norm.weight").to_vector<float>(), ramp(8, 1));
}

TEST(HfModel, ShardedMatchesSingle) {
  const std::string dir = tiny_dir("hf_sharded");
  fs::remove(dir + "/model.safetensors");
  auto entries = tiny_entries();
  std::vector<Entry> a(entries.begin(), entries.begin() + 5), b(entries.begin() + 5, entries.end());
  write_file(dir + "/model-00001-of-00002.safetensors", safetensors(a));
  write_file(dir + "/model-00002-of-00002.safetensors", safetensors(b));
  json map;
  for (const auto& e : a) map[e.name] = "model-00001-of-00002.safetensors";
  for (const auto& e : b) map[e.name] = "model-00002-of-00002.safetensors";
  write_json(dir + "/model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", map}});
  const Checkpoint sharded = load_hf_model(dir), single = load_hf_model(tiny_dir("hf_single2"));
  ASSERT_EQ(sharded.tensors.size(), single.tensors.size());
  for (const auto& [name, t] : single.tensors)
    EXPECT_EQ(sharded.tensors.at(name).to_vector<float>(), t.to_vector<float>()) << name;

  // The index names a shard that is missing / a tensor its shard does not hold.
  map["model.norm.weight"] = "model-00003-of-00002.safetensors";
  write_json(dir + "/model.safetensors.index.json", {{"weight_map", map}});
  try {
    load_hf_model(dir);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), "model-00003-of-00002.safetensors");
  }
  map["model.norm.weight"] = "model-00002-of-00002.safetensors";
  write_json(dir + "/model.safetensors.index.json", {{"weight_map", map}});
  try {
    load_hf_model(dir);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), "model.norm.weight");
  }
  map["model.norm.weight"] = "../evil.safetensors";
  write_json(dir + "/model.safetensors.index.json", {{"weight_map", map}});
  EXPECT_THROW(load_hf_model(dir), InputError);
}

TEST(HfModel, TiedEmbeddingsDropASavedHead) {
  json cfg = tiny_config();
  cfg["tie_word_embeddings"] = true;
  const Checkpoint ck = load_hf_model(tiny_dir("hf_tied", cfg));
  EXPECT_FALSE(ck.tensors.count("lm_head.weight"));
}

TEST(HfModel, MissingPiecesAreNamed) {
  auto error_of = [](const std::string& dir) -> std::string {
    try {
      load_hf_model(dir);
    } catch (const InputError& e) {
      return e.what();
    }
    return "accepted";
  };
  {
    const std::string dir = tiny_dir("hf_no_tok");
    fs::remove(dir + "/tokenizer.json");
    EXPECT_CONTAINS(error_of(dir), "tokenizer file missing");
    EXPECT_CONTAINS(error_of(dir), dir);
  }
  {
    const std::string dir = tiny_dir("hf_no_weights");
    fs::remove(dir + "/model.safetensors");
    EXPECT_CONTAINS(error_of(dir), "model.safetensors");
  }
  {
    const std::string dir = tiny_dir("hf_missing_tensor");
    auto entries = tiny_entries(false);  // no lm_head although untied
    write_file(dir + "/model.safetensors", safetensors(entries));
    EXPECT_CONTAINS(error_of(dir), "lm_head.weight");
  }
  {
    const std::string dir = tiny_dir("hf_wrong_shape");
    auto entries = tiny_entries();
    entries[5].shape = {8, 4};  // k_proj transposed
    write_file(dir + "/model.safetensors", safetensors(entries));
    EXPECT_CONTAINS(error_of(dir), "layers.0.self_attn.k_proj.weight");
  }
  {
    json cfg = tiny_config();
    cfg.erase("hidden_size");
    const std::string dir = tiny_dir("hf_no_hidden", cfg);
    EXPECT_CONTAINS(error_of(dir), "hidden_size");
    EXPECT_CONTAINS(error_of(dir), dir + "/config.json");
  }
  EXPECT_CONTAINS(error_of(temp_path("no_such_dir")), "no_such_dir");
}

TEST(HfModel, RealSavePretrainedDirectory) {
  // tests/reference/golden/tiny_llama: written by transformers' save_pretrained (no tokenizer files).
  const std::string dir = std::string(LINSPEC_SOURCE_DIR) + "/tests/reference/golden/tiny_llama";
  const ModelConfig c = model_config_from_hf_file(dir + "/config.json");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.attention_out_bias);
  EXPECT_EQ(c.head_dim, 8);
  HfWeights w = open_hf_weights(dir);
  EXPECT_EQ(w.tensors.size(), 29u);
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, loc] : w.tensors) tensors[linspec_tensor_name(name)] = loc.first->load(*loc.second, DType::F32);
  EXPECT_NO_THROW(check_llama_tensors(c, tensors, dir));
  try {
    load_hf_model(dir);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), "tokenizer file missing");
  }
}

// ---- config.json ----
std::string config_error(json cfg, const std::string& name) {
  const std::string path = temp_path(name + ".json");
  write_json(path, cfg);
  try {
    model_config_from_hf_file(path);
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), path);
    return e.what();
  }
  return "accepted";
}

TEST(HfConfig, ArchitecturesAndRefusals) {
  json cfg = tiny_config();
  for (const char* ok : {"llama", "mistral", "qwen2"}) {
    cfg["model_type"] = ok;
    EXPECT_EQ(config_error(cfg, std::string("ok_") + ok), "accepted") << ok;
  }
  cfg["model_type"] = "qwen2";
  const std::string qpath = temp_path("qwen2_cfg.json");
  write_json(qpath, cfg);
  EXPECT_TRUE(model_config_from_hf_file(qpath).attention_bias);
  EXPECT_FALSE(model_config_from_hf_file(qpath).attention_out_bias);

  for (const char* bad : {"gemma3", "gpt2"}) {
    json b = tiny_config();
    b["model_type"] = bad;
    const std::string msg = config_error(b, std::string("bad_") + bad);
    EXPECT_CONTAINS(msg, std::string("'") + bad + "'");
  }
  json window = tiny_config();
  window["model_type"] = "mistral";
  window["sliding_window"] = 16;
  EXPECT_CONTAINS(config_error(window, "window"), "sliding_window");
  window["sliding_window"] = nullptr;
  EXPECT_EQ(config_error(window, "window_null"), "accepted");
  json yarn = tiny_config();
  yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_CONTAINS(config_error(yarn, "yarn"), "yarn");
  json gelu = tiny_config();
  gelu["hidden_act"] = "gelu";
  EXPECT_CONTAINS(config_error(gelu, "gelu"), "gelu");
  json mistyped = tiny_config();
  mistyped["num_hidden_layers"] = "two";
  EXPECT_CONTAINS(config_error(mistyped, "mistyped"), "num_hidden_layers");
  json gqa = tiny_config();
  gqa["num_key_value_heads"] = 3;
  EXPECT_CONTAINS(config_error(gqa, "gqa"), "num_kv_heads");
  const std::string broken = temp_path("broken.json");
  write_file(broken, "{\"model_type\": ");
  EXPECT_THROW(model_config_from_hf_file(broken), InputError);
}

TEST(HfConfig, EosListsAndNewRopeParameters) {
  json cfg = tiny_config();
  cfg["eos_token_id"] = {4, 5};
  cfg.erase("rope_theta");
  cfg["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                            {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 32}};
  const std::string path = temp_path("rope_params.json");
  write_json(path, cfg);
  const ModelConfig c = model_config_from_hf_file(path);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 32);
  // JSON round trip of the native form.
  EXPECT_EQ(nlohmann::json(model_config_from_json(nlohmann::json(c), "rt")), nlohmann::json(c));
}

// ---- safetensors validation ----
std::string st_error(const std::string& bytes, const std::string& name) {
  const std::string path = temp_path(name + ".safetensors");
  write_file(path, bytes);
  try {
    SafetensorsFile f(path);
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), path);
    return e.what();
  }
  return "accepted";
}

TEST(Safetensors, MalformedFilesNameFileAndTensor) {
  const std::string data8(8, '\0');
  auto hdr = [](const std::string& dtype, const std::string& shape, uint64_t b, uint64_t e) {
    return "{\"w\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape + ", \"data_offsets\": [" +
           std::to_string(b) + ", " + std::to_string(e) + "]}}";
  };
  EXPECT_EQ(st_error(raw_safetensors(hdr("F32", "[2]", 0, 8), data8), "ok"), "accepted");
  EXPECT_CONTAINS(st_error("abc", "short"), "truncated");
  {
    std::string s;
    put<uint64_t>(s, 200'000'000);
    EXPECT_CONTAINS(st_error(s + "{}", "huge_header"), "limit");
  }
  {
    std::string s;
    put<uint64_t>(s, 1000);
    EXPECT_CONTAINS(st_error(s + "{}", "header_past_end"), "truncated");
  }
  EXPECT_CONTAINS(st_error(raw_safetensors("{\"w\": ", data8), "not_json"), "JSON");
  EXPECT_CONTAINS(st_error(raw_safetensors("[1, 2]", data8), "not_object"), "JSON object");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F33", "[2]", 0, 8), data8), "dtype"), "'w'");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[3]", 0, 8), data8), "size"), "'w'");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[-2]", 0, 8), data8), "negative"), "'w'");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[4294967296, 4294967296]", 0, 8), data8), "overflow"),
                  "overflows");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[4]", 0, 16), data8), "past_end"), "'w'");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[2]", 8, 0), data8), "reversed"), "'w'");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[1]", 4, 8), data8), "hole"), "hole");
  EXPECT_CONTAINS(st_error(raw_safetensors(hdr("F32", "[1]", 0, 4), data8), "trailing"), "after the last");
  const std::string overlap =
      "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
      " \"v\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}";
  EXPECT_CONTAINS(st_error(raw_safetensors(overlap, data8), "overlap"), "overlaps");
  const std::string dup =
      "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
      " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}";
  EXPECT_CONTAINS(st_error(raw_safetensors(dup, data8), "dup"), "duplicate tensor name 'w'");
  // A known dtype that is not a float weight type loads as a file but not as a model weight.
  const std::string path = temp_path("i64.safetensors");
  write_file(path, raw_safetensors(hdr("I64", "[1]", 0, 8), data8));
  SafetensorsFile f(path);
  try {
    f.load(f.tensors()[0], DType::F32);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), "'w'");
    EXPECT_CONTAINS(e.what(), "I64");
  }
}

// ---- tokenizers ----
TEST(HfTokenizer, SentencePieceModelMatchesLibsentencepiece) {
  // spm_tiny.json (tests/reference/make_spm_goldens.py) holds ids and pieces produced by sentencepiece itself.
  const std::string src = std::string(LINSPEC_SOURCE_DIR) + "/tests/reference";
  const std::string dir = make_dir("spm_dir");
  fs::copy_file(src + "/spm_tiny.model", dir + "/tokenizer.model");
  ModelConfig c;
  c.vocab_size = 600;
  const TokenizerData t = load_hf_tokenizer(dir, c);
  std::ifstream in(src + "/golden/spm_tiny.json");
  const json golden = json::parse(in);
  EXPECT_EQ(t.type, "spm");
  EXPECT_EQ(static_cast<int64_t>(t.vocab.size()), golden["vocab_size"].get<int64_t>());
  EXPECT_EQ(t.bos_id, golden["bos_id"].get<int64_t>());
  EXPECT_EQ(t.eos_id, golden["eos_id"].get<int64_t>());
  EXPECT_EQ(t.unk_id, golden["unk_id"].get<int64_t>());
  EXPECT_TRUE(t.add_bos);
  EXPECT_EQ(t.token_types[0], kTokenUnknown);
  EXPECT_EQ(t.token_types[1], kTokenControl);
  EXPECT_EQ(t.token_types[3], kTokenByte);
  EXPECT_EQ(t.vocab[3], "<0x00>");
  EXPECT_EQ(t.spm_model, testing::read_file(src + "/spm_tiny.model"));
  size_t checked = 0;
  for (const auto& sample : golden["samples"]) {
    const auto ids = sample["ids"].get<std::vector<int64_t>>();
    const auto pieces = sample["pieces"].get<std::vector<std::string>>();
    for (size_t i = 0; i < ids.size(); ++i, ++checked) EXPECT_EQ(t.vocab[ids[i]], pieces[i]);
  }
  EXPECT_GT(checked, 10u);
  EXPECT_THROW(parse_sentencepiece_model("\x0a\xff\xff\xff", "bad.model"), InputError);
  EXPECT_THROW(parse_sentencepiece_model("", "empty.model"), InputError);
}

TEST(HfTokenizer, PreTokenizerKinds) {
  EXPECT_EQ(classify_pre_tokenizer(tiny_tokenizer_json()["pre_tokenizer"]), "smollm");
  EXPECT_EQ(classify_pre_tokenizer({{"type", "ByteLevel"}, {"add_prefix_space", false}}), "gpt2");
  EXPECT_EQ(classify_pre_tokenizer({{"type", "Whitespace"}}), "custom");
  EXPECT_EQ(classify_pre_tokenizer(json()), "custom");
  json tj = tiny_tokenizer_json();
  tj["post_processor"] = {{"type", "TemplateProcessing"},
                          {"single", {{{"SpecialToken", {{"id", "<|im_start|>"}}}}, {{"Sequence", {{"id", "A"}}}}}}};
  tj["model"]["merges"] = {"a b"};
  const TokenizerData t = bpe_from_tokenizer_json(tj, "tokenizer.json");
  EXPECT_TRUE(t.add_bos);
  EXPECT_FALSE(t.add_eos);
  EXPECT_EQ(t.merges, (std::vector<std::string>{"a b"}));
  tj["added_tokens"][0]["id"] = 1;  // clashes with "b"
  EXPECT_THROW(bpe_from_tokenizer_json(tj, "tokenizer.json"), InputError);
}

}  // namespace
}  // namespace linspec
