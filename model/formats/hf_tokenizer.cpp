#include "model/formats/hf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"
#include "model/formats/sentencepiece_model.h"
#include "model/json_fields.h"

namespace linspec {

using nlohmann::json;
namespace fs = std::filesystem;
namespace jf = json_fields;

namespace {

// Split patterns of the byte-level BPE families llama.cpp names (from their tokenizer.json files).
const char* kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::string type_of(const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : ""; }

bool byte_level(const json& j, bool use_regex) {
  return type_of(j) == "ByteLevel" && !j.value("add_prefix_space", false) && j.value("use_regex", true) == use_regex;
}

json read_json_file(const fs::path& p) {
  json j = json::parse(read_input_file(p.string(), "a tokenizer file"), nullptr, false);
  if (j.is_discarded()) throw_input_error(p.string(), ": not valid JSON");
  return j;
}

std::string read_binary_file(const fs::path& p) { return read_input_file(p.string(), "a tokenizer file"); }

// tokenizer_config.json writes special tokens as strings or as {"content": ...} objects.
std::string special_token_text(const json& cfg, const std::string& key) {
  if (!cfg.is_object() || !cfg.contains(key)) return "";
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

int64_t find_token(const TokenizerData& t, const std::string& text) {
  if (text.empty()) return -1;
  for (size_t i = 0; i < t.vocab.size(); ++i)
    if (t.vocab[i] == text) return static_cast<int64_t>(i);
  return -1;
}

// Whether the post-processor template adds a special token before / after a single sequence.
std::pair<bool, bool> template_adds(const json& post) {
  const json* single = nullptr;
  if (type_of(post) == "TemplateProcessing" && post.contains("single")) single = &post["single"];
  if (type_of(post) == "Sequence" && post.contains("processors"))
    for (const auto& p : post["processors"])
      if (type_of(p) == "TemplateProcessing" && p.contains("single")) single = &p["single"];
  if (!single || !single->is_array() || single->empty()) return {false, false};
  auto is_special = [](const json& piece) { return piece.is_object() && piece.contains("SpecialToken"); };
  return {is_special(single->front()), is_special(single->back())};
}

}  // namespace

std::string classify_pre_tokenizer(const json& pre) {
  if (byte_level(pre, true)) return "gpt2";
  if (type_of(pre) != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array()) return "custom";
  const json& items = pre["pretokenizers"];
  if (items.size() == 2 && type_of(items[0]) == "Digits" && items[0].value("individual_digits", false) &&
      byte_level(items[1], true))
    return "smollm";
  if (items.size() == 2 && type_of(items[0]) == "Split" && byte_level(items[1], false)) {
    const json& pattern = items[0].contains("pattern") ? items[0]["pattern"] : json();
    const std::string regex = pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()
                                  ? pattern["Regex"].get<std::string>() : "";
    if (regex == kLlama3Pattern) return "llama3";
    if (regex == kQwen2Pattern) return "qwen2";
  }
  return "custom";
}

json hf_pre_tokenizer_json(const std::string& pre) {
  // What HF's own tokenizer.json files of these families hold, so classify_pre_tokenizer maps it back to `pre`.
  auto byte_level = [](bool use_regex) {
    return json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
  };
  auto split_then_bytes = [&](const char* regex) {
    return json{{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                  byte_level(false)}}};
  };
  if (pre == "gpt2" || pre == "default" || pre.empty()) return byte_level(true);
  if (pre == "smollm" || pre == "starcoder")
    return json{{"type", "Sequence"},
                {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
  if (pre == "llama3" || pre == "llama-bpe") return split_then_bytes(kLlama3Pattern);
  if (pre == "qwen2") return split_then_bytes(kQwen2Pattern);
  return nullptr;
}

TokenizerData bpe_from_tokenizer_json(const json& tj, const std::string& path) {
  TokenizerData t;
  t.type = "bpe";
  const json& model = jf::require(tj, "model", path);
  const json& vocab = jf::require(model, "vocab", path + " (model)");
  if (!vocab.is_object()) throw_input_error(path, ": model.vocab must be an object of token -> id");
  std::vector<std::pair<int64_t, std::string>> entries;
  for (auto& [token, id] : vocab.items()) entries.emplace_back(jf::convert<int64_t>(id, "model.vocab", path), token);
  std::vector<int32_t> kinds(entries.size(), kTokenNormal);
  const json added = tj.contains("added_tokens") && tj["added_tokens"].is_array() ? tj["added_tokens"] : json::array();
  for (const auto& a : added) {
    const int64_t id = jf::get<int64_t>(a, "id", path + " (added_tokens)");
    entries.emplace_back(id, jf::get<std::string>(a, "content", path + " (added_tokens)"));
    kinds.push_back(jf::get_or<bool>(a, "special", false, path) ? kTokenControl : kTokenUserDefined);
  }
  int64_t n = 0;
  for (const auto& [id, token] : entries) {
    if (id < 0 || id >= (1 << 24)) throw_input_error(path, ": token '", token, "' has id ", id, " out of range");
    n = std::max(n, id + 1);
  }
  t.vocab.assign(static_cast<size_t>(n), std::string());
  t.token_types.assign(static_cast<size_t>(n), kTokenUndefined);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [id, token] = entries[i];
    auto& slot = t.vocab[static_cast<size_t>(id)];
    if (t.token_types[id] != kTokenUndefined && slot != token)
      throw_input_error(path, ": id ", id, " is given to both '", slot, "' and '", token, "'");
    slot = token;
    t.token_types[id] = std::max(t.token_types[id], kinds[i]);  // an added token's kind wins over "normal"
  }
  for (int64_t id = 0; id < n; ++id)
    if (t.token_types[id] == kTokenUndefined) throw_input_error(path, ": no token has id ", id);

  const json merges = model.contains("merges") ? model["merges"] : json::array();
  if (!merges.is_array()) throw_input_error(path, ": model.merges must be an array");
  for (const auto& m : merges) {
    if (m.is_string()) {
      t.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      const std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
        throw_input_error(path, ": merge [\"", a, "\", \"", b, "\"] contains a space");
      t.merges.push_back(a + " " + b);
    } else {
      throw_input_error(path, ": model.merges entries must be \"a b\" strings or [a, b] pairs");
    }
  }
  const json pre = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json();
  t.pre = classify_pre_tokenizer(pre);
  t.pre_tokenizer_json = pre.dump();
  if (model.contains("unk_token") && model["unk_token"].is_string()) t.unk_id = find_token(t, model["unk_token"].get<std::string>());
  auto [bos, eos] = template_adds(tj.contains("post_processor") ? tj["post_processor"] : json());
  t.add_bos = bos;
  t.add_eos = eos;
  t.validate(path);  // merges against the vocabulary, named against tokenizer.json (the caller validates again)
  return t;
}

// tokenizer_config.json's chat_template: a string, or a list of {name, template} of which "default" is the chat one.
static std::string chat_template_of(const json& cfg, const std::string& where) {
  if (!cfg.is_object() || !cfg.contains("chat_template") || cfg["chat_template"].is_null()) return "";
  const json& ct = cfg["chat_template"];
  if (ct.is_string()) return ct.get<std::string>();
  if (ct.is_array())
    for (const json& e : ct)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
  throw_input_error(where, ": key 'chat_template': expected a string or a list with a \"default\" template");
}

TokenizerData load_hf_tokenizer(const std::string& dir, const ModelConfig& config) {
  const fs::path root(dir);
  const fs::path tj_path = root / "tokenizer.json", spm_path = root / "tokenizer.model";
  const fs::path cfg_path = root / "tokenizer_config.json";
  json tj;
  bool bpe = false;
  if (fs::exists(tj_path)) {
    tj = read_json_file(tj_path);
    const json model = tj.is_object() && tj.contains("model") ? tj["model"] : json();
    const json pre = tj.is_object() && tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json();
    const json decoder = tj.is_object() && tj.contains("decoder") ? tj["decoder"] : json();
    // Byte-level BPE: a BPE model whose pre-tokenizer or decoder works on the GPT-2 byte alphabet.
    bpe = type_of(model) == "BPE" && !model.value("byte_fallback", false) &&
          (pre.dump().find("\"ByteLevel\"") != std::string::npos || type_of(decoder) == "ByteLevel");
  }
  TokenizerData t;
  if (bpe) {
    t = bpe_from_tokenizer_json(tj, tj_path.string());
  } else if (fs::exists(spm_path)) {
    t = parse_sentencepiece_model(read_binary_file(spm_path), spm_path.string());
  } else if (fs::exists(tj_path)) {
    throw_input_error(tj_path.string(), ": tokenizer kind is not supported (byte-level BPE in tokenizer.json, or a "
                      "SentencePiece tokenizer.model)");
  } else {
    throw_input_error(dir, ": tokenizer file missing (expected tokenizer.json or tokenizer.model)");
  }

  // Specials: tokenizer_config.json names them; config.json ids are the fallback.
  json cfg = fs::exists(cfg_path) ? read_json_file(cfg_path) : json::object();
  const std::string where = cfg_path.string();
  if (int64_t id = find_token(t, special_token_text(cfg, "bos_token")); id >= 0) t.bos_id = id;
  else if (t.type == "bpe" && config.bos_token_id >= 0) t.bos_id = config.bos_token_id;
  if (int64_t id = find_token(t, special_token_text(cfg, "eos_token")); id >= 0) t.eos_id = id;
  else if (t.type == "bpe" && !config.eos_token_ids.empty()) t.eos_id = config.eos_token_ids[0];
  if (int64_t id = find_token(t, special_token_text(cfg, "unk_token")); id >= 0) t.unk_id = id;
  if (int64_t id = find_token(t, special_token_text(cfg, "pad_token")); id >= 0) t.pad_id = id;
  t.add_bos = jf::get_or<bool>(cfg, "add_bos_token", t.add_bos, where);
  t.add_eos = jf::get_or<bool>(cfg, "add_eos_token", t.add_eos, where);
  t.chat_template = chat_template_of(cfg, where);
  if (static_cast<int64_t>(t.vocab.size()) > config.vocab_size)
    throw_input_error(dir, ": the tokenizer has ", t.vocab.size(), " tokens but the model's vocab_size is ",
                      config.vocab_size);
  t.validate(dir);
  return t;
}

}  // namespace linspec
