// The HTTP front of `linspec serve` (cpp-httplib): OpenAI-compatible routes over the Scheduler.
//   POST /v1/completions, POST /v1/chat/completions   (stream: true -> server-sent events, serve/http/sse.h)
//   GET  /v1/models, /health, /metrics
// Threads: httplib's pool runs one connection per thread; a handler parses and validates the request, tokenises,
// submits it to the scheduler and then only waits for its events, so the model runs on the scheduler's one thread.
// Safety: the listener binds where told (127.0.0.1 by default); with an API key every route except /health needs
// `Authorization: Bearer KEY` (401); bodies over max_body_bytes get 413; bad requests get 400 with an OpenAI error
// object and never reach the model. drain() refuses new work (503), lets what runs finish, then stops the listener.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "data/tokenizer.h"
#include "serve/http/chat_template.h"
#include "serve/http/metrics.h"
#include "serve/http/openai_api.h"
#include "serve/http/scheduler.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace linspec::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (port() tells which)
  std::string api_key;  // empty: no authentication
  std::string model_name = "linspec";
  size_t max_body_bytes = 1 << 20;
  int threads = 32;  // HTTP connections served at once
  ServeLimits limits;
};

class Server {
 public:
  // `chat` empty: chat requests get 400 with `chat_unavailable` as the message.
  Server(ServerOptions options, Scheduler& scheduler, const Tokenizer& tokenizer, std::optional<ChatTemplate> chat,
         std::string chat_unavailable, Metrics& metrics);
  ~Server();
  // Binds the listening socket; InputError naming host:port when it cannot.
  void bind();
  int port() const { return port_; }
  // Serves until drain() finishes (or stop()).
  void run();
  // Refuses new requests with 503, waits until every accepted one has finished, then stops the listener.
  void drain();

 private:
  void handle_completion(const httplib::Request& req, httplib::Response& res, bool chat);
  // Prompt text or ids -> token ids, checked against the limits (ApiError 400).
  std::vector<int32_t> tokenize(const CompletionRequest::Prompt& p, bool chat) const;

  ServerOptions opt_;
  Scheduler& sched_;
  const Tokenizer& tok_;
  std::optional<ChatTemplate> chat_;
  std::string chat_unavailable_;
  Metrics& metrics_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> active_{0};  // requests accepted and not yet answered (streams until their last byte)
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace linspec::serve
