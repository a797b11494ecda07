#include "data/hf_tokenizer_files.h"

#include <unordered_map>

#include "core/error.h"
#include "data/spm_model_proto.h"
#include "model/formats/hf_tokenizer.h"

namespace linspec {

using nlohmann::json;

namespace {

bool is_added(const TokenizerData& t, size_t id) {
  return id < t.token_types.size() && (t.token_types[id] == kTokenControl || t.token_types[id] == kTokenUserDefined);
}

json token_text(const TokenizerData& t, int64_t id) { return id >= 0 ? json(t.vocab[id]) : json(nullptr); }

// One added token as tokenizer.json and tokenizer_config.json spell it: matched verbatim in raw text (linspec
// matches Control and UserDefined tokens before pre-tokenisation, never normalised or stripped).
json added_token(const TokenizerData& t, size_t id) {
  return json{{"content", t.vocab[id]}, {"single_word", false}, {"lstrip", false},     {"rstrip", false},
              {"normalized", false},    {"special", t.token_types[id] == kTokenControl}};
}

// TemplateProcessing adds BOS/EOS to every encoding, as linspec's encode(add_special) does; ByteLevel (offsets
// only) when neither is added, as SmolLM2's tokenizer.json has it.
json post_processor(const TokenizerData& t) {
  const bool bos = t.add_bos && t.bos_id >= 0, eos = t.add_eos && t.eos_id >= 0;
  if (!bos && !eos)
    return json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  json specials = json::object();
  auto special = [&](int64_t id, int type_id) {
    specials[t.vocab[id]] = json{{"id", t.vocab[id]}, {"ids", json::array({id})}, {"tokens", json::array({t.vocab[id]})}};
    return json{{"SpecialToken", json{{"id", t.vocab[id]}, {"type_id", type_id}}}};
  };
  auto sequence = [&](const char* name, int type_id, json& out) {
    if (bos) out.push_back(special(t.bos_id, type_id));
    out.push_back(json{{"Sequence", json{{"id", name}, {"type_id", type_id}}}});
    if (eos) out.push_back(special(t.eos_id, type_id));
  };
  json single = json::array(), pair = json::array();
  sequence("A", 0, single);
  sequence("A", 0, pair);
  sequence("B", 1, pair);
  return json{{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

json bpe_tokenizer_json(const TokenizerData& t, const std::string& where) {
  json pre;
  if (!t.pre_tokenizer_json.empty()) {
    pre = json::parse(t.pre_tokenizer_json, nullptr, false);
    if (pre.is_discarded()) throw_input_error(where, ": tokenizer key 'pre_tokenizer_json' is not valid JSON");
  } else {
    pre = hf_pre_tokenizer_json(t.pre);
    if (pre.is_null())
      throw_input_error(where, ": tokenizer pre-tokenizer '", t.pre, "' has no tokenizer.json equivalent");
  }
  json vocab = json::object(), added = json::array();
  std::unordered_map<std::string, size_t> seen;
  for (size_t id = 0; id < t.vocab.size(); ++id) {
    // tokenizer.json maps text -> id, so a text can name one token only.
    if (auto [it, fresh] = seen.emplace(t.vocab[id], id); !fresh)
      throw_input_error(where, ": tokens ", it->second, " and ", id, " are both '", t.vocab[id],
                        "'; tokenizer.json cannot hold two tokens with the same text");
    vocab[t.vocab[id]] = id;
    if (is_added(t, id)) {
      json a = added_token(t, id);
      a["id"] = id;
      added.push_back(std::move(a));
    }
  }
  json merges = json::array();
  for (const auto& m : t.merges) merges.push_back(m);
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", pre},
              {"post_processor", post_processor(t)},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", token_text(t, t.unk_id)},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}}}};
}

json tokenizer_config_json(const TokenizerData& t, const ModelConfig& c) {
  const bool spm = t.type == "spm";
  json added = json::object(), extra = json::array();
  for (size_t id = 0; id < t.vocab.size(); ++id) {
    if (!is_added(t, id)) continue;
    added[std::to_string(id)] = added_token(t, id);
    const auto sid = static_cast<int64_t>(id);
    if (t.token_types[id] == kTokenControl && sid != t.bos_id && sid != t.eos_id && sid != t.unk_id && sid != t.pad_id)
      extra.push_back(t.vocab[id]);
  }
  json j{{"tokenizer_class", spm ? "LlamaTokenizer" : "PreTrainedTokenizerFast"},
         {"add_bos_token", t.add_bos},
         {"add_eos_token", t.add_eos},
         {"added_tokens_decoder", added},
         {"additional_special_tokens", extra},
         {"bos_token", token_text(t, t.bos_id)},
         {"eos_token", token_text(t, t.eos_id)},
         {"unk_token", token_text(t, t.unk_id)},
         {"pad_token", token_text(t, t.pad_id)},
         // linspec's decode joins the pieces' bytes as they are; HF's clean-up would drop spaces before punctuation.
         {"clean_up_tokenization_spaces", false},
         {"model_max_length", c.max_position_embeddings}};
  // SentencePiece as the library runs it (linspec calls it directly): no prefix-space rewriting after specials.
  if (spm) {
    j["legacy"] = true;
    j["sp_model_kwargs"] = json::object();
  }
  if (!t.chat_template.empty()) j["chat_template"] = t.chat_template;
  return j;
}

json special_tokens_map_json(const json& config) {
  json j = json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
    if (!config[key].is_null())
      j[key] = {{"content", config[key]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                {"normalized", false}};
  if (!config["additional_special_tokens"].empty()) j["additional_special_tokens"] = config["additional_special_tokens"];
  return j;
}

// HF generate stops at generation_config's eos_token_id; linspec generate and serve stop at the tokenizer's EOS.
json generation_config_json(const TokenizerData& t, const ModelConfig& c) {
  json j{{"_from_model_config", false}};
  const int64_t bos = t.bos_id >= 0 ? t.bos_id : c.bos_token_id;
  if (bos >= 0) j["bos_token_id"] = bos;
  if (t.eos_id >= 0) j["eos_token_id"] = t.eos_id;
  if (t.pad_id >= 0) j["pad_token_id"] = t.pad_id;
  return j;
}

}  // namespace

std::map<std::string, std::string> hf_tokenizer_files(const TokenizerData& t, const ModelConfig& c,
                                                      const std::string& where) {
  t.validate(where);
  std::map<std::string, std::string> files;
  if (t.type == "bpe") files["tokenizer.json"] = bpe_tokenizer_json(t, where).dump(2) + "\n";
  else files["tokenizer.model"] = t.spm_model.empty() ? spm_model_from_vocab(t, where) : t.spm_model;
  const json config = tokenizer_config_json(t, c);
  files["tokenizer_config.json"] = config.dump(2) + "\n";
  files["special_tokens_map.json"] = special_tokens_map_json(config).dump(2) + "\n";
  files["generation_config.json"] = generation_config_json(t, c).dump(2) + "\n";
  return files;
}

}  // namespace linspec
