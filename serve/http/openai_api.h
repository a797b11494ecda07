// The OpenAI wire format of /v1/completions and /v1/chat/completions: request bodies parsed and validated into a
// CompletionRequest (every field type-checked; anything wrong is an ApiError with the 400 the OpenAI API returns),
// and responses / stream chunks built from what the scheduler produced. No HTTP here (serve/http/server.h) and no
// model (serve/http/scheduler.h), so the unit tests drive it with JSON alone.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/generation.h"
#include "serve/http/chat_template.h"

namespace linspec::serve {

// An error the client sees as {"error": {"message", "type", "param", "code"}} with this HTTP status.
struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;
  ApiError(int status, std::string message, std::string param = "", std::string type = "invalid_request_error",
           std::string code = "")
      : std::runtime_error(std::move(message)),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}
};
nlohmann::json error_body(const ApiError& e);

struct ServeLimits {
  int64_t max_prompt_tokens = 4096;  // per prompt, after tokenisation (chat: after the template)
  int64_t max_tokens = 2048;         // the largest max_tokens a request may ask for
  int64_t default_max_tokens = 16;   // completions without max_tokens (OpenAI's default)
  int64_t chat_default_max_tokens = 512;
  int64_t max_prompts = 16;  // prompts in one /v1/completions request (a list prompt)
  int64_t max_stop = 4;      // stop strings (OpenAI's limit)
  int64_t max_top_logprobs = 20;
};

// One request after validation; the prompts are still text or ids (tokenising needs the model's tokenizer).
struct CompletionRequest {
  bool chat = false;
  std::string model;
  // Completions: one entry per prompt (text or token ids). Chat: one rendered prompt (text).
  struct Prompt {
    std::string text;
    std::vector<int32_t> ids;
    bool is_ids = false;
  };
  std::vector<Prompt> prompts;
  std::vector<ChatMessage> messages;  // chat only
  int64_t max_tokens = 16;
  SamplingConfig sampling;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false;
  bool echo = false;      // completions: prompt tokens (and their logprobs) come back in front of the output
  int64_t logprobs = -1;  // -1: none; k >= 0: the sampled token's logprob and the k most likely alternatives
};

// Parses a /v1/completions (chat false) or /v1/chat/completions body. ApiError 400 naming the field otherwise.
CompletionRequest parse_completion_request(const nlohmann::json& body, bool chat, const ServeLimits& limits);

// What the scheduler hands back for one choice.
struct TokenLogprob {
  int32_t id = 0;
  std::string token;              // the token's own text (may be a partial UTF-8 sequence)
  std::optional<double> logprob;  // none: the first prompt token (nothing predicts it)
  std::vector<std::pair<std::string, double>> top;
};
struct ChoiceResult {
  std::string text;                    // echo: prompt text + output
  std::string finish_reason;           // stop | length
  std::vector<TokenLogprob> logprobs;  // when requested (echo: prompt tokens first)
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

struct ResponseMeta {
  std::string id, model;
  int64_t created = 0;
};

nlohmann::json completion_response(const CompletionRequest& req, const ResponseMeta& meta,
                                   const std::vector<ChoiceResult>& choices);
// One streamed chunk: a text delta (and the logprobs of the tokens it carries), or the final chunk with
// finish_reason. chat: the first chunk also carries role "assistant".
nlohmann::json completion_chunk(const CompletionRequest& req, const ResponseMeta& meta, int64_t index,
                                const std::string& delta, const std::vector<TokenLogprob>& logprobs,
                                const std::string& finish_reason, bool first);
// stream_options.include_usage: the last chunk before [DONE], with empty choices.
nlohmann::json usage_chunk(const CompletionRequest& req, const ResponseMeta& meta, int64_t prompt_tokens,
                           int64_t completion_tokens);

// JSON text for the wire: invalid UTF-8 (a token that is half a character) becomes U+FFFD instead of throwing.
std::string dump_json(const nlohmann::json& j);

}  // namespace linspec::serve
