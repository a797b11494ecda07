#include "serve/http/server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

#include "core/error.h"
#include "serve/http/client_connection.h"
#include "serve/http/sse.h"

namespace linspec::serve {

using json = nlohmann::json;

namespace {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  send_json(res, e.status, error_body(e));
}

// Constant-time comparison, so the key cannot be guessed byte by byte from response times.
bool same_key(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

// Counts a request from acceptance until its last byte, so drain() knows when everything was answered.
struct ActiveGuard {
  std::atomic<int64_t>& n;
  explicit ActiveGuard(std::atomic<int64_t>& n) : n(n) { ++n; }
  ~ActiveGuard() { --n; }
};

}  // namespace

Server::Server(ServerOptions options, Scheduler& scheduler, const Tokenizer& tokenizer,
               std::optional<ChatTemplate> chat, std::string chat_unavailable, Metrics& metrics)
    : opt_(std::move(options)),
      sched_(scheduler),
      tok_(tokenizer),
      chat_(std::move(chat)),
      chat_unavailable_(std::move(chat_unavailable)),
      metrics_(metrics),
      http_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *http_;
  const int threads = std::max(4, opt_.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(opt_.max_body_bytes);

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!opt_.api_key.empty() && req.path != "/health") {
      const std::string auth = req.get_header_value("Authorization");
      if (!auth.starts_with("Bearer ") || !same_key(auth.substr(7), opt_.api_key)) {
        send_error(res, ApiError(401, "missing or invalid API key (send 'Authorization: Bearer <key>')", "",
                                 "authentication_error", "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (draining_ && req.path.starts_with("/v1/") && req.method == "POST") {
      send_error(res, ApiError(503, "the server is shutting down", "", "server_error", "shutting_down"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // httplib's own refusals (404 route, 413 body too large, 400 unparsable HTTP) come without a body: give them the
  // OpenAI error object the handlers use.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string msg = res.status == 404   ? "no route " + req.method + " " + req.path
                            : res.status == 413 ? std::string("request body too large")
                                                : "HTTP error " + std::to_string(res.status);
    send_json(res, res.status, error_body(ApiError(res.status, msg)));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    std::cerr << "serve: " << what << "\n";
    send_json(res, 500, error_body(ApiError(500, what, "", "server_error")));
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.request_done(req.path, res.status);
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_)
      send_json(res, 503, {{"status", "draining"}});
    else
      send_json(res, 200, {{"status", "ok"}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.prometheus(), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(
        res, 200,
        {{"object", "list"},
         {"data",
          json::array({{{"id", opt_.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "linspec"}}})}});
  });
  s.Post("/v1/completions",
         [this](const httplib::Request& req, httplib::Response& res) { handle_completion(req, res, false); });
  s.Post("/v1/chat/completions",
         [this](const httplib::Request& req, httplib::Response& res) { handle_completion(req, res, true); });
}

Server::~Server() = default;

void Server::bind() {
  const bool ok =
      opt_.port == 0 ? (port_ = http_->bind_to_any_port(opt_.host)) > 0 : http_->bind_to_port(opt_.host, opt_.port);
  if (!ok) throw_input_error("serve: cannot listen on ", opt_.host, ":", opt_.port, " (address in use or not local)");
  if (opt_.port != 0) port_ = opt_.port;
}

void Server::run() { http_->listen_after_bind(); }

void Server::drain() {
  draining_ = true;
  sched_.wait_idle();
  // Every sequence ended; give the handlers the moment it takes to write their last bytes.
  for (int i = 0; i < 600 && active_ > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  http_->stop();
}

std::vector<int32_t> Server::tokenize(const CompletionRequest::Prompt& p, bool chat) const {
  std::vector<int32_t> ids = p.is_ids ? p.ids
                                      // A rendered chat template carries its own special tokens (HF's
                                      // apply_chat_template tokenises without adding BOS/EOS); a completion prompt
                                      // is encoded as `linspec generate` encodes --prompt.
                                      : tok_.encode(p.text, {.add_special = !chat, .parse_special = true});
  if (ids.empty()) throw ApiError(400, "the prompt is empty (no tokens)", chat ? "messages" : "prompt");
  for (int32_t id : ids)
    if (id < 0 || id >= tok_.vocab_size())
      throw ApiError(400,
                     "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                         std::to_string(tok_.vocab_size()) + ")",
                     "prompt");
  if (static_cast<int64_t>(ids.size()) > opt_.limits.max_prompt_tokens)
    throw ApiError(400,
                   "the prompt has " + std::to_string(ids.size()) + " tokens, more than the limit of " +
                       std::to_string(opt_.limits.max_prompt_tokens),
                   chat ? "messages" : "prompt", "invalid_request_error", "context_length_exceeded");
  return ids;
}

void Server::handle_completion(const httplib::Request& req, httplib::Response& res, bool chat) {
  auto guard = std::make_shared<ActiveGuard>(active_);
  CompletionRequest cr;
  std::vector<std::shared_ptr<Sequence>> seqs;
  std::vector<std::string> prompt_texts;
  try {
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::parse_error& e) {
      throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
    }
    cr = parse_completion_request(body, chat, opt_.limits);
    if (chat) {
      if (!chat_) throw ApiError(400, chat_unavailable_, "messages");
      cr.prompts = {{chat_->render(cr.messages, true), {}, false}};
    }
    std::vector<SequenceRequest> todo;
    for (const auto& p : cr.prompts) {
      SequenceRequest sr;
      sr.prompt = tokenize(p, chat);
      prompt_texts.push_back(p.is_ids ? tok_.decode(sr.prompt) : p.text);
      sr.gen.max_new_tokens = cr.max_tokens;
      sr.gen.sampling = cr.sampling;
      if (tok_.eos() >= 0) sr.gen.stop_ids.push_back(tok_.eos());
      sr.stop = cr.stop;
      sr.logprobs = cr.logprobs;
      sr.prompt_logprobs = cr.echo && cr.logprobs >= 0;
      todo.push_back(std::move(sr));
    }
    for (auto& sr : todo) seqs.push_back(sched_.submit(std::move(sr)));
  } catch (const ApiError& e) {
    for (auto& s : seqs) s->cancel();
    send_error(res, e);
    return;
  } catch (const InputError& e) {
    for (auto& s : seqs) s->cancel();
    send_error(res, ApiError(400, e.what()));
    return;
  }

  ResponseMeta meta{
      (chat ? "chatcmpl-" : "cmpl-") + std::to_string(std::time(nullptr)) + "-" + std::to_string(next_id_++),
      opt_.model_name, static_cast<int64_t>(std::time(nullptr))};
  // The reply of a non-streamed request is written only at the end, and a stream's first bytes only once its
  // sequence runs, so the client's socket is watched while they wait: a client that goes away stops its sequences.
  auto conn = std::make_shared<ClientConnection>(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (!cr.stream) {
    std::vector<ChoiceResult> choices(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      ChoiceResult& c = choices[i];
      c.prompt_tokens = static_cast<int64_t>(seqs[i]->request().prompt.size());
      SequenceEvent ev;
      for (bool done = false; !done;) {
        if (!conn->alive()) {
          for (auto& s : seqs) s->cancel();
          send_error(res, ApiError(499, "the client closed the connection", "", "server_error", "client_closed"));
          return;
        }
        if (!seqs[i]->next(ev, std::chrono::milliseconds(100))) continue;
        c.text += ev.text;
        c.logprobs.insert(c.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
        done = ev.finished;
        c.finish_reason = ev.finish_reason;
        if (ev.finished && ev.finish_reason == "error") {
          for (auto& s : seqs) s->cancel();
          send_error(res, ApiError(500, "generation failed: " + ev.error, "", "server_error"));
          return;
        }
        if (ev.finished && ev.finish_reason == "cancelled") {
          for (auto& s : seqs) s->cancel();
          send_error(res, ApiError(503, "the server stopped before the request finished", "", "server_error"));
          return;
        }
      }
      c.completion_tokens = seqs[i]->completion_tokens();
      if (cr.echo) {
        c.text = prompt_texts[i] + c.text;
        c.logprobs.insert(c.logprobs.begin(), seqs[i]->prompt_logprobs.begin(), seqs[i]->prompt_logprobs.end());
      }
    }
    send_json(res, 200, completion_response(cr, meta, choices));
    return;
  }

  // Streaming: the provider runs on this connection's thread after the headers; it writes every event as it comes
  // and stops the sequence as soon as a write fails or, while no event comes, the client's socket is closed.
  auto seq = seqs[0];
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, cr, meta, seq, guard, conn](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) {
          if (!sink.write(s.data(), s.size())) {
            seq->cancel();
            return false;
          }
          return true;
        };
        bool first = true;
        SequenceEvent ev;
        for (bool done = false; !done;) {
          if (!seq->next(ev, std::chrono::milliseconds(100))) {
            if (!sink.is_writable() || !conn->alive()) {
              seq->cancel();
              return false;
            }
            continue;
          }
          done = ev.finished;
          if (ev.finished && (ev.finish_reason == "error" || ev.finish_reason == "cancelled")) {
            write(sse_error(error_body(
                ApiError(ev.finish_reason == "error" ? 500 : 503,
                         ev.finish_reason == "error" ? "generation failed: " + ev.error : "the server stopped", "",
                         "server_error"))));
            sink.done();
            return true;
          }
          if (!ev.text.empty() || !ev.logprobs.empty() || first) {
            if (!write(sse_event(completion_chunk(cr, meta, 0, ev.text, ev.logprobs, "", first)))) return false;
            first = false;
          }
          if (ev.finished) {
            if (!write(sse_event(completion_chunk(cr, meta, 0, "", {}, ev.finish_reason, false)))) return false;
            if (cr.include_usage &&
                !write(sse_event(usage_chunk(cr, meta, static_cast<int64_t>(seq->request().prompt.size()),
                                             seq->completion_tokens()))))
              return false;
            if (!write(sse_done())) return false;
          }
        }
        sink.done();
        return true;
      },
      [seq](bool success) {
        if (!success) seq->cancel();
      });
}

}  // namespace linspec::serve
