#include "serve/http/openai_api.h"

#include <cmath>
#include <limits>
#include <random>

namespace linspec::serve {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError(400, message, param); }

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_float:
      return "a number";
    default:
      return "an integer";
  }
}

// Present and not null: JSON null means "use the default", as OpenAI's API treats it.
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* key, double fallback, double lo, double hi, bool lo_open = false) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number()) bad(key, std::string("'") + key + "' must be a number, got " + type_name(*v));
  const double x = v->get<double>();
  if (!(lo_open ? x > lo : x >= lo) || !(x <= hi) || !std::isfinite(x))
    bad(key, std::string("'") + key + "' must be in " + (lo_open ? "(" : "[") + json(lo).dump() + ", " +
                 json(hi).dump() + "], got " + v->dump());
  return x;
}

int64_t integer(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number_integer() && !v->is_number_unsigned())
    bad(key, std::string("'") + key + "' must be an integer, got " + type_name(*v));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    bad(key, std::string("'") + key + "' is out of range");
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    bad(key, std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                 std::to_string(x));
  return x;
}

bool boolean(const json& body, const char* key, bool fallback) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(key, std::string("'") + key + "' must be a boolean, got " + type_name(*v));
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const json& arr, const char* key) {
  std::vector<int32_t> ids;
  for (const json& e : arr) {
    if (!e.is_number_integer() && !e.is_number_unsigned())
      bad(key, std::string("'") + key + "' token ids must be integers, got " + type_name(e));
    const int64_t id = e.get<int64_t>();
    if (id < 0 || id > std::numeric_limits<int32_t>::max())
      bad(key, "token id " + std::to_string(id) + " is out of range");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

std::vector<CompletionRequest::Prompt> parse_prompts(const json& body, const ServeLimits& limits) {
  const json* p = field(body, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  std::vector<CompletionRequest::Prompt> out;
  auto text = [](const std::string& s) { return CompletionRequest::Prompt{s, {}, false}; };
  if (p->is_string()) return {text(p->get<std::string>())};
  if (!p->is_array() || p->empty())
    bad("prompt", std::string("'prompt' must be a string, a list of strings or a list of token ids, got ") +
                      (p->is_array() ? "an empty array" : type_name(*p)));
  if ((*p)[0].is_number()) return {CompletionRequest::Prompt{"", token_ids(*p, "prompt"), true}};
  if (static_cast<int64_t>(p->size()) > limits.max_prompts)
    bad("prompt",
        "at most " + std::to_string(limits.max_prompts) + " prompts per request, got " + std::to_string(p->size()));
  for (const json& e : *p) {
    if (e.is_string())
      out.push_back(text(e.get<std::string>()));
    else if (e.is_array() && !e.empty())
      out.push_back({"", token_ids(e, "prompt"), true});
    else
      bad("prompt",
          std::string("'prompt' list entries must be strings or non-empty token id lists, got ") + type_name(e));
  }
  return out;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* m = field(body, "messages");
  if (!m) bad("messages", "'messages' is required");
  if (!m->is_array() || m->empty())
    bad("messages",
        std::string("'messages' must be a non-empty array, got ") + (m->is_array() ? "an empty array" : type_name(*m)));
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m->size(); ++i) {
    const json& e = (*m)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!e.is_object()) bad(at, at + " must be an object, got " + type_name(e));
    const json* role = field(e, "role");
    if (!role || !role->is_string()) bad(at + ".role", at + ".role must be a string");
    ChatMessage msg{role->get<std::string>(), ""};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      bad(at + ".role", at + ".role '" + msg.role + "' is not supported (system, user or assistant)");
    const json* content = field(e, "content");
    if (!content) {
      if (msg.role != "assistant") bad(at + ".content", at + ".content is required");
    } else if (content->is_string()) {
      msg.content = content->get<std::string>();
    } else if (content->is_array()) {
      // Content parts: only text parts (this server has no image or audio input).
      for (const json& part : *content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string())
          bad(at + ".content", at + ".content parts must be {\"type\": \"text\", \"text\": string}");
        msg.content += part["text"].get<std::string>();
      }
    } else {
      bad(at + ".content", at + ".content must be a string or a list of text parts, got " + type_name(*content));
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<std::string> parse_stop(const json& body, const ServeLimits& limits) {
  const json* s = field(body, "stop");
  if (!s) return {};
  std::vector<std::string> out;
  if (s->is_string())
    out.push_back(s->get<std::string>());
  else if (s->is_array())
    for (const json& e : *s) {
      if (!e.is_string()) bad("stop", std::string("'stop' entries must be strings, got ") + type_name(e));
      out.push_back(e.get<std::string>());
    }
  else
    bad("stop", std::string("'stop' must be a string or a list of strings, got ") + type_name(*s));
  if (static_cast<int64_t>(out.size()) > limits.max_stop)
    bad("stop", "at most " + std::to_string(limits.max_stop) + " stop strings, got " + std::to_string(out.size()));
  for (const auto& x : out)
    if (x.empty()) bad("stop", "stop strings must not be empty");
  return out;
}

json top_map(const TokenLogprob& t) {
  json m = json::object();
  for (const auto& [tok, lp] : t.top) m[tok] = lp;
  return m;
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json completion_logprobs(const std::vector<TokenLogprob>& lps) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  int64_t offset = 0;
  for (const auto& t : lps) {
    tokens.push_back(t.token);
    token_lps.push_back(t.logprob ? json(*t.logprob) : json());
    tops.push_back(t.logprob ? top_map(t) : json());
    offsets.push_back(offset);
    offset += static_cast<int64_t>(t.token.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json chat_logprobs(const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& t : lps) {
    json top = json::array();
    for (const auto& [tok, lp] : t.top) top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", bytes_of(tok)}});
    content.push_back({{"token", t.token},
                       {"logprob", t.logprob.value_or(0.0)},
                       {"bytes", bytes_of(t.token)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json usage(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

}  // namespace

json error_body(const ApiError& e) {
  return {{"error",
           {{"message", e.what()},
            {"type", e.type},
            {"param", e.param.empty() ? json() : json(e.param)},
            {"code", e.code.empty() ? json() : json(e.code)}}}};
}

CompletionRequest parse_completion_request(const json& body, bool chat, const ServeLimits& limits) {
  if (!body.is_object()) bad("", std::string("the request body must be a JSON object, got ") + type_name(body));
  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) bad("model", std::string("'model' must be a string, got ") + type_name(*m));
    r.model = m->get<std::string>();
  }
  if (chat)
    r.messages = parse_messages(body);
  else
    r.prompts = parse_prompts(body, limits);

  const int64_t fallback = chat ? limits.chat_default_max_tokens : limits.default_max_tokens;
  r.max_tokens = integer(body, "max_tokens", std::min(fallback, limits.max_tokens), 0, limits.max_tokens);
  if (chat) r.max_tokens = integer(body, "max_completion_tokens", r.max_tokens, 0, limits.max_tokens);
  r.sampling.temperature = number(body, "temperature", 1.0, 0.0, 2.0);
  r.sampling.top_p = number(body, "top_p", 1.0, 0.0, 1.0, true);
  const int64_t top_k = integer(body, "top_k", 0, -1, std::numeric_limits<int32_t>::max());
  r.sampling.top_k = top_k < 0 ? 0 : top_k;  // vLLM's -1 and 0 both mean "no limit"
  // No seed: a fresh one per request (OpenAI's behaviour); with one, sampling is reproducible.
  r.sampling.seed = field(body, "seed")
                        ? static_cast<uint64_t>(integer(body, "seed", 0, std::numeric_limits<int64_t>::min(),
                                                        std::numeric_limits<int64_t>::max()))
                        : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  r.stop = parse_stop(body, limits);
  if (integer(body, "n", 1, 1, 1) != 1 || integer(body, "best_of", 1, 1, 1) != 1) bad("n", "only n = 1 is supported");
  for (const char* k : {"presence_penalty", "frequency_penalty"})
    if (number(body, k, 0.0, -2.0, 2.0) != 0.0) bad(k, std::string("'") + k + "' is not supported (only 0)");
  if (const json* lb = field(body, "logit_bias"); lb && !(lb->is_object() && lb->empty()))
    bad("logit_bias", "'logit_bias' is not supported");
  if (const json* sfx = field(body, "suffix"); sfx && !(sfx->is_string() && sfx->get<std::string>().empty()))
    bad("suffix", "'suffix' is not supported");
  r.stream = boolean(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed with stream: true");
    r.include_usage = boolean(*so, "include_usage", false);
  }
  if (chat) {
    if (field(body, "echo")) bad("echo", "'echo' is a /v1/completions field");
    const bool lp = boolean(body, "logprobs", false);
    const int64_t top = integer(body, "top_logprobs", 0, 0, limits.max_top_logprobs);
    if (field(body, "top_logprobs") && !lp) bad("top_logprobs", "'top_logprobs' needs logprobs: true");
    r.logprobs = lp ? top : -1;
  } else {
    r.echo = boolean(body, "echo", false);
    r.logprobs = integer(body, "logprobs", -1, 0, limits.max_top_logprobs);
    if (r.stream && r.echo) bad("echo", "'echo' is not supported with stream: true");
    if (r.stream && r.prompts.size() > 1) bad("prompt", "a list of prompts is not supported with stream: true");
  }
  if (chat && r.max_tokens == 0) bad("max_tokens", "'max_tokens' must be at least 1 for chat");
  return r;
}

json completion_response(const CompletionRequest& req, const ResponseMeta& meta,
                         const std::vector<ChoiceResult>& choices) {
  json out_choices = json::array();
  int64_t prompt = 0, completion = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    prompt += c.prompt_tokens, completion += c.completion_tokens;
    json lp = req.logprobs >= 0 ? (req.chat ? chat_logprobs(c.logprobs) : completion_logprobs(c.logprobs)) : json();
    if (req.chat)
      out_choices.push_back({{"index", i},
                             {"message", {{"role", "assistant"}, {"content", c.text}}},
                             {"logprobs", lp},
                             {"finish_reason", c.finish_reason}});
    else
      out_choices.push_back({{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", c.finish_reason}});
  }
  return {{"id", meta.id},           {"object", req.chat ? "chat.completion" : "text_completion"},
          {"created", meta.created}, {"model", meta.model},
          {"choices", out_choices},  {"usage", usage(prompt, completion)}};
}

json completion_chunk(const CompletionRequest& req, const ResponseMeta& meta, int64_t index, const std::string& delta,
                      const std::vector<TokenLogprob>& logprobs, const std::string& finish_reason, bool first) {
  json lp = req.logprobs >= 0 && !logprobs.empty()
                ? (req.chat ? chat_logprobs(logprobs) : completion_logprobs(logprobs))
                : json();
  json choice;
  if (req.chat) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.empty() || (first && finish_reason.empty())) d["content"] = delta;
    choice = {{"index", index}, {"delta", d}, {"logprobs", lp}};
  } else {
    choice = {{"index", index}, {"text", delta}, {"logprobs", lp}};
  }
  choice["finish_reason"] = finish_reason.empty() ? json() : json(finish_reason);
  return {{"id", meta.id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", json::array({choice})}};
}

json usage_chunk(const CompletionRequest& req, const ResponseMeta& meta, int64_t prompt_tokens,
                 int64_t completion_tokens) {
  return {{"id", meta.id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", json::array()},
          {"usage", usage(prompt_tokens, completion_tokens)}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace linspec::serve
