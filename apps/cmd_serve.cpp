// linspec serve --checkpoint C [--host 127.0.0.1] [--port 8080] [--speculative off|heads|draft] [--weights
// f32|bf16|int8]
//               [--device cpu|cuda|auto] [--max-batch N] [--api-key KEY] ...
// An OpenAI-compatible HTTP server (serve/http/server.h) over a continuous-batching scheduler
// (serve/http/scheduler.h). SIGTERM / SIGINT: stop accepting requests, finish the running ones, exit 0.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "apps/command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/option_parse.h"
#include "serve/http/chat_template.h"
#include "serve/http/metrics.h"
#include "serve/http/scheduler.h"
#include "serve/http/server.h"
#include "serve/model_loader.h"
#include "serve/speculative_loader.h"

namespace linspec::apps {
namespace {
struct Args {
  std::string checkpoint, speculative = "off", draft, device = "cpu", weights = "f32", chat_template, model_name;
  serve::ServerOptions server;
  int64_t max_batch = 16, max_queue = 256;
  std::string speculative_max_batch = "auto";
  // Heads trees sized by this machine's verify cost: the static 64-node tree costs a CPU far more than it saves.
  SpeculativeSetup spec = [] {
    SpeculativeSetup s;
    s.tree = "auto";
    return s;
  }();
} args;

int run() {
  auto& o = args.server;
  if (o.port < 0 || o.port > 65535) throw_input_error("--port ", o.port, ": must be in [0, 65535]");
  if (args.max_batch < 1 || args.max_batch > 1024)
    throw_input_error("--max-batch ", args.max_batch, ": must be in [1, 1024]");
  if (args.max_queue < 0) throw_input_error("--max-queue ", args.max_queue, ": must be >= 0");
  int64_t speculative_max_batch = -1;
  if (args.speculative_max_batch != "auto")
    speculative_max_batch = static_cast<int64_t>(
        parse_option_u64("serve", "--speculative-max-batch (auto or N)", args.speculative_max_batch));
  if (o.limits.max_tokens < 1) throw_input_error("--max-tokens ", o.limits.max_tokens, ": must be >= 1");
  if (o.limits.max_prompt_tokens < 1)
    throw_input_error("--max-prompt-tokens ", o.limits.max_prompt_tokens, ": must be >= 1");
  if (o.api_key.empty())
    if (const char* env = std::getenv("LINSPEC_API_KEY")) o.api_key = env;
  o.limits.default_max_tokens = std::min<int64_t>(16, o.limits.max_tokens);
  o.limits.chat_default_max_tokens = std::min<int64_t>(512, o.limits.max_tokens);
  o.model_name = args.model_name.empty() ? std::filesystem::path(args.checkpoint).stem().string() : args.model_name;

  // SIGTERM / SIGINT are taken by one waiting thread (sigwait), so they must be blocked before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-stream is a failed write, not a dead server

  LlamaOptions opt;
  opt.device = device_flag(args.device);
  opt.requires_grad = false;
  LoadedModel m = load_model(args.checkpoint, opt);
  m.model->set_inference_weights(weights_flag(args.weights));

  // The chat template: refused now if linspec cannot render it, rather than on the first chat request.
  std::optional<serve::ChatTemplate> chat;
  std::string chat_unavailable;
  if (!args.chat_template.empty()) {
    chat = serve::ChatTemplate::parse(read_input_file(args.chat_template, "chat template"), args.chat_template);
  } else {
    const std::string& source = m.checkpoint.tokenizer.chat_template;
    if (!source.empty())
      chat = serve::ChatTemplate::parse(source, args.checkpoint + " (/tokenizer chat_template)");
    else {
      chat_unavailable = args.checkpoint +
                         " has no chat template (convert the model again from a GGUF file or HF "
                         "directory that has one, or start the server with --chat-template FILE); "
                         "/v1/completions works";
      std::cerr << "serve: warning: " << chat_unavailable << "\n";
    }
  }

  LoadedSpeculator spec;
  if (args.speculative != "off") {
    args.spec.mode = args.speculative;
    args.spec.draft = args.draft;
    spec = load_speculator(*m.model, args.checkpoint, args.spec);
  }

  serve::Metrics metrics;
  serve::Scheduler scheduler(
      *m.model, *m.tokenizer,
      {.max_batch = args.max_batch,
       .max_queue = args.max_queue,
       .speculator = spec.speculator.get(),
       .speculative_max_batch = speculative_max_batch},
      &metrics);
  o.threads = static_cast<int>(std::max<int64_t>(o.threads, 2 * args.max_batch + 8));
  serve::Server server(o, scheduler, *m.tokenizer, chat, chat_unavailable, metrics);
  server.bind();

  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::cerr << "serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ": draining (" << scheduler.running()
              << " running, " << scheduler.queued() << " queued)\n";
    server.drain();
  });
  std::cerr << "serve: listening on http://" << o.host << ":" << server.port() << " (model " << o.model_name
            << ", weights " << args.weights << ", speculative " << args.speculative << ", max batch " << args.max_batch
            << ", chat template " << (chat ? chat->name() : "none") << (o.api_key.empty() ? "" : ", API key required")
            << ")" << std::endl;
  server.run();
  signals.join();
  std::cerr << "serve: drained, exiting\n";
  return 0;
}

RegisterCommand reg(Command{
    "serve", "OpenAI-compatible HTTP server (completions, chat, streaming, batching)", [](CLI::App& s) {
      auto& o = args.server;
      s.add_option("--checkpoint", args.checkpoint, "Checkpoint (.h5)")->required();
      s.add_option("--host", o.host, "Address to bind (default: loopback only)")->capture_default_str();
      s.add_option("--port", o.port, "TCP port (0: any free port)")->capture_default_str();
      s.add_option("--device", args.device, "cpu (default) | cuda | auto");
      add_weights_flag(s, args.weights);
      add_draft_weights_flag(s, args.spec.draft_weights);
      s.add_option("--speculative", args.speculative, "off | heads | eagle | draft")
          ->check(CLI::IsMember({"off", "heads", "eagle", "draft"}))
          ->capture_default_str();
      s.add_option("--draft", args.draft, "Draft model: checkpoint PATH or first-layers:N");
      s.add_option("--tree", args.spec.tree,
                   "Heads tree: auto (default: sized by this machine's verify cost, measured once and cached) | default (static) | FILE.json")
          ->capture_default_str();
      s.add_option("--gamma", args.spec.gamma, "Draft tokens per step")->capture_default_str();
      s.add_option("--max-batch", args.max_batch, "Sequences decoded together")->capture_default_str();
      s.add_option("--speculative-max-batch", args.speculative_max_batch,
                   "Speculative sequences draft while drafting pays at their number (auto: this machine's verify "
                   "cost and the draft's running acceptance) or while at most N decode speculatively (0: never)")
          ->capture_default_str();
      s.add_option("--max-queue", args.max_queue, "Waiting requests before 503")->capture_default_str();
      s.add_option("--api-key", o.api_key,
                   "Require 'Authorization: Bearer KEY' (default: $LINSPEC_API_KEY, else none)");
      s.add_option("--max-tokens", o.limits.max_tokens, "Largest max_tokens a request may ask")->capture_default_str();
      s.add_option("--max-prompt-tokens", o.limits.max_prompt_tokens, "Longest prompt (tokens)")->capture_default_str();
      s.add_option("--max-body-bytes", o.max_body_bytes, "Largest request body")->capture_default_str();
      s.add_option("--chat-template", args.chat_template, "Jinja chat template file (default: the checkpoint's own)");
      s.add_option("--model-name", args.model_name,
                   "Name in /v1/models and replies (default: the checkpoint's file stem)");
      return run;
    }});
}  // namespace
}  // namespace linspec::apps
