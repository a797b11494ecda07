// The OpenAI wire format: request validation (types, ranges, unsupported fields -> 400 naming the field), replies,
// stream chunks and their SSE framing, and the streamed text (UTF-8 and stop strings held back).
#include <gtest/gtest.h>

#include "core/error.h"
#include "serve/http/openai_api.h"
#include "serve/http/sse.h"
#include "serve/http/text_stream.h"
#include "serve_test_util.h"

namespace linspec::serve {
namespace {

using json = nlohmann::json;

CompletionRequest parse(const std::string& body, bool chat = false, ServeLimits limits = {}) {
  return parse_completion_request(json::parse(body), chat, limits);
}

// The ApiError a body produces (status 0 when it parses).
ApiError error_of(const std::string& body, bool chat = false, ServeLimits limits = {}) {
  try {
    parse(body, chat, limits);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "parsed");
}

TEST(ServeApi, CompletionFields) {
  const auto r = parse(R"({"model": "m", "prompt": "hi", "max_tokens": 7, "temperature": 0, "top_p": 0.5,
                           "top_k": 3, "seed": 42, "stop": ["\n", "x"], "logprobs": 2, "echo": true, "n": 1})");
  EXPECT_FALSE(r.chat);
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].text, "hi");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.top_p, 0.5);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "x"}));
  EXPECT_EQ(r.logprobs, 2);
  EXPECT_TRUE(r.echo);
  // Defaults: OpenAI's (16 tokens, temperature 1, no logprobs); null means default.
  const auto d = parse(R"({"prompt": "hi", "max_tokens": null, "stop": null})");
  EXPECT_EQ(d.max_tokens, 16);
  EXPECT_EQ(d.sampling.temperature, 1.0);
  EXPECT_EQ(d.logprobs, -1);
  EXPECT_TRUE(d.stop.empty());
  // Token-id prompts and lists of prompts; top_k -1 means no limit (vLLM).
  const auto ids = parse(R"({"prompt": [1, 2, 3], "top_k": -1})");
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_TRUE(ids.prompts[0].is_ids);
  EXPECT_EQ(ids.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ids.sampling.top_k, 0);
  EXPECT_EQ(parse(R"({"prompt": ["a", [5, 6]]})").prompts.size(), 2u);
  EXPECT_EQ(parse(R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": true}})").include_usage, true);
}

TEST(ServeApi, ChatFields) {
  const auto r = parse(R"({"model": "m", "messages": [{"role": "system", "content": "be brief"},
                             {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                           "max_completion_tokens": 9, "logprobs": true, "top_logprobs": 3})",
                       true);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.max_tokens, 9);
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_EQ(parse(R"({"messages": [{"role": "user", "content": "x"}]})", true).max_tokens, 512);
}

TEST(ServeApi, BadRequestsName400AndTheField) {
  struct Case {
    const char* body;
    bool chat;
    const char* param;
  };
  const Case cases[] = {
      {R"([1, 2])", false, ""},
      {R"({})", false, "prompt"},
      {R"({"prompt": 5})", false, "prompt"},
      {R"({"prompt": []})", false, "prompt"},
      {R"({"prompt": [1, "a"]})", false, "prompt"},
      {R"({"prompt": [-1]})", false, "prompt"},
      {R"({"prompt": "x", "max_tokens": "5"})", false, "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 2.5})", false, "max_tokens"},
      {R"({"prompt": "x", "max_tokens": -1})", false, "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 100000})", false, "max_tokens"},
      {R"({"prompt": "x", "temperature": "hot"})", false, "temperature"},
      {R"({"prompt": "x", "temperature": 3})", false, "temperature"},
      {R"({"prompt": "x", "top_p": 0})", false, "top_p"},
      {R"({"prompt": "x", "top_k": -2})", false, "top_k"},
      {R"({"prompt": "x", "seed": "1"})", false, "seed"},
      {R"({"prompt": "x", "stop": 3})", false, "stop"},
      {R"({"prompt": "x", "stop": ["a", 1]})", false, "stop"},
      {R"({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", false, "stop"},
      {R"({"prompt": "x", "stop": [""]})", false, "stop"},
      {R"({"prompt": "x", "n": 2})", false, "n"},
      {R"({"prompt": "x", "stream": "yes"})", false, "stream"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", false, "stream_options"},
      {R"({"prompt": "x", "echo": 1})", false, "echo"},
      {R"({"prompt": "x", "echo": true, "stream": true})", false, "echo"},
      {R"({"prompt": "x", "logprobs": 99})", false, "logprobs"},
      {R"({"prompt": "x", "presence_penalty": 0.5})", false, "presence_penalty"},
      {R"({"prompt": "x", "logit_bias": {"1": 5}})", false, "logit_bias"},
      {R"({"prompt": "x", "model": 3})", false, "model"},
      {R"({"prompt": "x"})", true, "messages"},
      {R"({"messages": []})", true, "messages"},
      {R"({"messages": [{"role": "user"}]})", true, "messages[0].content"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", true, "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": 5}]})", true, "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", true, "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "echo": true})", true, "echo"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", true, "max_tokens"},
  };
  for (const Case& c : cases) {
    const ApiError e = error_of(c.body, c.chat);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << ": " << e.what();
    EXPECT_GT(std::string(e.what()).size(), 10u) << c.body;
  }
  ServeLimits tight;
  tight.max_prompts = 2;
  EXPECT_EQ(error_of(R"({"prompt": ["a", "b", "c"]})", false, tight).status, 400);
  // The error object is OpenAI's shape.
  const json body = error_body(ApiError(400, "bad", "prompt"));
  EXPECT_EQ(body["error"]["message"], "bad");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "prompt");
  EXPECT_TRUE(body["error"]["code"].is_null());
}

TEST(ServeApi, ResponsesAndChunks) {
  const ResponseMeta meta{"cmpl-1", "tiny", 123};
  CompletionRequest req = parse(R"({"prompt": "x", "logprobs": 1})");
  ChoiceResult c;
  c.text = "hello";
  c.finish_reason = "length";
  c.prompt_tokens = 3, c.completion_tokens = 2;
  c.logprobs = {{1, "he", -0.5, {{"he", -0.5}}}, {2, "llo", -1.5, {{"llo", -1.5}}}};
  const json r = completion_response(req, meta, {c});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["id"], "cmpl-1");
  EXPECT_EQ(r["choices"][0]["text"], "hello");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"], json({"he", "llo"}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["token_logprobs"], json({-0.5, -1.5}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["text_offset"], json({0, 2}));
  EXPECT_EQ(r["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));

  CompletionRequest chat = parse(R"({"messages": [{"role": "user", "content": "x"}]})", true);
  const json cr = completion_response(chat, meta, {c});
  EXPECT_EQ(cr["object"], "chat.completion");
  EXPECT_EQ(cr["choices"][0]["message"], json({{"role", "assistant"}, {"content", "hello"}}));
  EXPECT_TRUE(cr["choices"][0]["logprobs"].is_null());

  const json first = completion_chunk(chat, meta, 0, "he", {}, "", true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", "he"}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const json last = completion_chunk(chat, meta, 0, "", {}, "stop", false);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json usage = usage_chunk(chat, meta, 4, 6);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 10);
  const json text_chunk = completion_chunk(req, meta, 0, "lo", {}, "", false);
  EXPECT_EQ(text_chunk["choices"][0]["text"], "lo");
}

TEST(ServeSse, EventsAreOneDataLineAndDoneEnds) {
  const std::string e = sse_event(json{{"text", "a\nb"}});
  EXPECT_EQ(e, "data: {\"text\":\"a\\nb\"}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // Half a UTF-8 character (one token of a multi-byte character) becomes U+FFFD instead of an exception.
  EXPECT_EQ(sse_event(json{{"t", std::string("\xE2\x82")}}), "data: {\"t\":\"\xEF\xBF\xBD\"}\n\n");
}

TEST(ServeTextStream, HoldsBackPartialCharactersAndStopStrings) {
  EXPECT_EQ(incomplete_utf8_tail("ab"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xE2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("a\xE2\x82\xAC"), 0u);
  EXPECT_EQ(stop_prefix_overlap("hello wor", {"world"}), 3u);
  EXPECT_EQ(stop_prefix_overlap("hello", {"xyz"}), 0u);

  const auto tok = make_tokenizer(testing::serve_tokenizer_data());
  auto ids = [&](const std::string& s) { return tok->encode(s, {.add_special = false}); };
  {
    // "€" is three byte tokens: nothing is sent until the character is complete.
    TextStream ts(*tok, {});
    std::string out;
    for (int32_t id : ids("a\xE2\x82\xAC")) out += "|" + ts.push(id);
    EXPECT_EQ(out, "|a|||\xE2\x82\xAC");
  }
  {
    TextStream ts(*tok, {"END"});
    std::string sent;
    for (int32_t id : ids("one EN two END three")) {
      sent += ts.push(id);
      if (ts.stopped()) break;
    }
    EXPECT_TRUE(ts.stopped());
    EXPECT_EQ(sent, "one EN two ");
    EXPECT_EQ(ts.finish(), "");
  }
  {
    // A partial stop string at the end is the model's text after all.
    TextStream ts(*tok, {"END"});
    std::string sent;
    for (int32_t id : ids("abc EN")) sent += ts.push(id);
    EXPECT_EQ(sent, "abc ");
    EXPECT_EQ(ts.finish(), "EN");
    EXPECT_FALSE(ts.stopped());
  }
  {
    // EOS (a control token) is skipped in the text, as `linspec generate` prints it.
    TextStream ts(*tok, {});
    std::string sent;
    for (int32_t id : ids("hi")) sent += ts.push(id);
    sent += ts.push(tok->eos()) + ts.finish();
    EXPECT_EQ(sent, "hi");
  }
}

}  // namespace
}  // namespace linspec::serve
