// Continuous batching: one engine thread owns the model and runs every sequence; HTTP threads submit requests and
// read their tokens back through a Sequence.
//
// Each loop: drop cancelled sequences (client gone), admit queued requests while fewer than max_batch run (prefill:
// all new prompts in one prefill_batched pass, each row equal to the LlamaModel::decode that generate() runs), then
// one decode_batched step over all running
// sequences (model/batched_decode.h: one GEMM per weight for the whole batch, each sequence at its own position on
// its own O(1) linear-attention state). Tokens are chosen with generate()'s choose_token and each sequence's own
// Philox(seed), so a sequence's output does not depend on who else is in the batch: greedy output equals
// `linspec generate` token for token (tests/unit/test_serve_scheduler.cpp).
//
// With a Speculator, requests that need no logprobs decode speculatively (lossless, as everywhere) in the same
// continuous batch: each engine step runs one Speculator::step over all speculative sequences (their heads as one
// GEMM, every sequence's tree verified in one packed target pass), and their accepted tokens stream to the clients
// after every step. A sequence samples from Philox(seed).fork(0), as `generate --speculative` does; sequences join,
// leave and are cancelled between steps like AR ones. Requests with logprobs decode AR (speculation has no
// per-token distribution to report). Under load verification is no longer nearly free: steps stop drafting while
// drafting does not pay (SchedulerOptions::speculative_max_batch) and resume when the batch shrinks.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "data/tokenizer.h"
#include "model/generation.h"
#include "model/llama.h"
#include "serve/http/metrics.h"
#include "serve/http/openai_api.h"
#include "serve/http/text_stream.h"
#include "serve/speculative.h"

namespace linspec::serve {

struct SequenceRequest {
  std::vector<int32_t> prompt;    // token ids, non-empty, each < vocab
  GenerationConfig gen;           // max_new_tokens, sampling, stop_ids (EOS)
  std::vector<std::string> stop;  // stop strings
  int64_t logprobs = -1;          // -1: none; k: each token's logprob and the k most likely alternatives
  bool prompt_logprobs = false;   // echo: the prompt tokens' logprobs too (needs logprobs >= 0)
};

// What the client gets, in order: text deltas (with their tokens' logprobs), the last one with finished set.
struct SequenceEvent {
  std::vector<int32_t> tokens;  // the tokens generated since the last event
  std::string text;
  std::vector<TokenLogprob> logprobs;
  bool finished = false;
  std::string finish_reason;  // stop | length | cancelled | error
  std::string error;
};

class Sequence {
 public:
  explicit Sequence(SequenceRequest req);
  // Waits up to `timeout` for the next event; false when none came.
  bool next(SequenceEvent& event, std::chrono::milliseconds timeout);
  // The client went away: the scheduler drops the sequence before its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  const SequenceRequest& request() const { return req_; }
  // Filled by the scheduler before the first event (read after it).
  std::vector<TokenLogprob> prompt_logprobs;
  int64_t completion_tokens() const { return completion_tokens_; }

 private:
  friend class Scheduler;
  void push(SequenceEvent e);

  SequenceRequest req_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SequenceEvent> events_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> completion_tokens_{0};
  // Engine-thread state.
  std::optional<DecodeState> state_;       // AR decoding
  std::optional<SpeculativeSequence> spec_;  // speculative decoding
  Philox rng_;
  std::optional<TextStream> text_;
  int32_t last_ = -1;  // the last emitted token, which the next step absorbs
  int64_t emitted_ = 0;
  std::chrono::steady_clock::time_point submitted_;
};

struct SchedulerOptions {
  int64_t max_batch = 8;    // sequences in the running batch
  int64_t max_queue = 256;  // waiting requests; more are refused with 503
  const Speculator* speculator = nullptr;
  // When speculative sequences draft: -1 (auto) while Speculator::drafting_pays for their number, else while at most
  // this many decode speculatively. Otherwise their step is a plain one (same output when greedy; sampled output
  // keeps the target's distribution).
  int64_t speculative_max_batch = -1;
};

class Scheduler {
 public:
  Scheduler(const LlamaModel& model, const Tokenizer& tokenizer, SchedulerOptions options, Metrics* metrics = nullptr);
  ~Scheduler();  // stops the engine thread; running sequences end with finish_reason "cancelled"
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. ApiError 503 when the queue is full, 400 on a bad prompt (empty, id out of range).
  std::shared_ptr<Sequence> submit(SequenceRequest request);
  // Blocks until nothing is queued or running.
  void wait_idle();
  int64_t queued() const;
  int64_t running() const;
  // The largest batch a step has run (tests check that sequences really shared steps).
  int64_t peak_batch() const { return peak_batch_; }

 private:
  void loop();
  // Starts a request: prompt scoring (echo); true when it waits for the prefill.
  bool admit(const std::shared_ptr<Sequence>& s);
  // Whether a sequence decodes speculatively (a speculator is set and it asks no logprobs).
  bool speculative(const Sequence& s) const;
  // The prefill of newly admitted sequences and their first tokens: the AR ones' prompts in one pass
  // (prefill_batched), the speculative ones' in another (Speculator::start_batched).
  void prefill(const std::vector<std::shared_ptr<Sequence>>& seqs);
  void step();
  // Emits one token chosen from `row` (logits over the vocab; null for speculative tokens). True when it finished.
  bool emit(Sequence& s, int32_t token, const float* row);
  // Emits the tokens a speculative sequence produced since the last call. True when it finished.
  bool emit_speculative(Sequence& s);
  void finish(Sequence& s, const std::string& reason, std::string text = "", std::string error = "");
  // Ends `s` with "cancelled" when its client went away; true then (the caller drops it).
  bool drop_if_cancelled(Sequence& s);
  void update_gauges();

  const LlamaModel& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::shared_ptr<Sequence>> queue_;
  std::vector<std::shared_ptr<Sequence>> running_;  // engine thread only (size mirrored in n_running_)
  std::atomic<int64_t> n_running_{0}, peak_batch_{0};
  bool busy_ = false;  // the engine is working on sequences that left the queue
  bool stop_ = false;
  std::thread thread_;
};

// log-softmax of one row of logits: the logprob of `token` and the k most likely tokens (ties: lower id first).
TokenLogprob token_logprob(const Tokenizer& tok, const float* row, int64_t vocab, int32_t token, int64_t k);

}  // namespace linspec::serve
