#include "serve/http/scheduler.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "model/batched_decode.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace linspec::serve {

namespace {
using Clock = std::chrono::steady_clock;

bool is_stop_id(const GenerationConfig& g, int32_t tok) {
  return std::find(g.stop_ids.begin(), g.stop_ids.end(), tok) != g.stop_ids.end();
}
}  // namespace

// A token's own text; "" for the padding rows a model's vocabulary may have past the tokenizer's.
static std::string token_text(const Tokenizer& tok, int32_t id) {
  return id < tok.vocab_size() ? tok.decode(std::vector<int32_t>{id}) : "";
}

TokenLogprob token_logprob(const Tokenizer& tok, const float* row, int64_t vocab, int32_t token, int64_t k) {
  const float top = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(row[i]) - top);
  const double lse = top + std::log(sum);
  TokenLogprob out;
  out.id = token;
  out.token = token_text(tok, token);
  out.logprob = row[token] - lse;
  k = std::min(k, vocab);
  if (k > 0) {
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (int64_t i = 0; i < k; ++i) out.top.emplace_back(token_text(tok, order[i]), row[order[i]] - lse);
  }
  return out;
}

Sequence::Sequence(SequenceRequest req) : req_(std::move(req)), rng_(req_.gen.sampling.seed) {}

void Sequence::push(SequenceEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

bool Sequence::next(SequenceEvent& event, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  event = std::move(events_.front());
  events_.pop_front();
  return true;
}

Scheduler::Scheduler(const LlamaModel& model, const Tokenizer& tokenizer, SchedulerOptions options, Metrics* metrics)
    : model_(model), tok_(tokenizer), opt_(options), metrics_(metrics) {
  LINSPEC_CHECK(opt_.max_batch >= 1 && opt_.max_queue >= 0, "scheduler: max_batch must be >= 1");
#ifdef _OPENMP
  // From here on the engine thread runs every model op, in its own OpenMP team. The team the caller's thread kept
  // from loading the model would stay alive beside it, and with more OpenMP threads than cores libgomp throttles its
  // spin-wait into futex sleeps: a third of a decode step went to waking threads (perf, 1 client, 2 cores). Release
  // the caller's workers (they come back if the caller runs a parallel region again).
  omp_pause_resource_all(omp_pause_soft);
#endif
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (auto& s : running_) finish(*s, "cancelled");
  for (auto& s : queue_) finish(*s, "cancelled");
}

std::shared_ptr<Sequence> Scheduler::submit(SequenceRequest request) {
  if (request.prompt.empty()) throw ApiError(400, "the prompt is empty (no tokens)", "prompt");
  const int64_t vocab = model_.config().vocab_size;
  for (int32_t id : request.prompt)
    if (id < 0 || id >= vocab)
      throw ApiError(400,
                     "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")",
                     "prompt");
  request.gen.sampling.validate();
  auto s = std::make_shared<Sequence>(std::move(request));
  s->submitted_ = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int64_t>(queue_.size()) >= opt_.max_queue)
      throw ApiError(503,
                     "the server is overloaded (" + std::to_string(queue_.size()) + " requests queued); retry later",
                     "", "server_error", "overloaded");
    queue_.push_back(s);
    if (metrics_) metrics_->set_queue_depth(static_cast<int64_t>(queue_.size()));
  }
  cv_.notify_all();
  return s;
}

void Scheduler::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

int64_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}
int64_t Scheduler::running() const { return n_running_; }

void Scheduler::update_gauges() {
  n_running_ = static_cast<int64_t>(running_.size());
  if (metrics_) metrics_->set_running(n_running_);
}

void Scheduler::finish(Sequence& s, const std::string& reason, std::string text, std::string error) {
  SequenceEvent e;
  e.text = std::move(text);
  e.finished = true;
  e.finish_reason = reason;
  e.error = std::move(error);
  s.state_.reset();  // the decode state's memory goes back now, not when the client reads the last event
  s.spec_.reset();
  s.push(std::move(e));
}

bool Scheduler::emit(Sequence& s, int32_t token, const float* row) {
  const SequenceRequest& r = s.req_;
  SequenceEvent e;
  e.tokens.push_back(token);
  if (row && r.logprobs >= 0)
    e.logprobs.push_back(token_logprob(tok_, row, model_.config().vocab_size, token, r.logprobs));
  if (s.emitted_ == 0 && metrics_)
    metrics_->time_to_first_token(std::chrono::duration<double>(Clock::now() - s.submitted_).count());
  ++s.emitted_;
  s.completion_tokens_ = s.emitted_;
  s.last_ = token;
  if (metrics_) metrics_->generated_tokens(1);
  e.text = s.text_->push(token);
  if (s.text_->stopped() || is_stop_id(r.gen, token))
    e.finish_reason = "stop";
  else if (s.emitted_ >= r.gen.max_new_tokens)
    e.finish_reason = "length";
  if (!e.finish_reason.empty()) {
    e.text += s.text_->finish();
    e.finished = true;
    s.state_.reset();
  }
  const bool done = e.finished;
  s.push(std::move(e));
  return done;
}

bool Scheduler::admit(const std::shared_ptr<Sequence>& sp) {
  Sequence& s = *sp;
  const SequenceRequest& r = s.req_;
  const int64_t T = static_cast<int64_t>(r.prompt.size());
  s.text_.emplace(tok_, r.stop);
  if (metrics_) metrics_->prompt_tokens(T);
  const Tensor ids = Tensor::from_vector(r.prompt, {1, T});
  if (r.prompt_logprobs) {
    // Scoring pass on a throwaway state (the generation prefill below stays the one generate() runs). The LM head
    // runs over a few rows at a time: T × vocab logits at once would be hundreds of MB for a long prompt.
    NoGradGuard no_grad;
    DecodeState scratch = model_.new_decode_state(1, T);
    const Tensor hidden = model_.decode_hidden(scratch, ids, false);  // [1, T, D]
    const int64_t V = model_.config().vocab_size, chunk = 64;
    s.prompt_logprobs.push_back({r.prompt[0], token_text(tok_, r.prompt[0]), std::nullopt, {}});
    for (int64_t a = 0; a + 1 < T; a += chunk) {
      const int64_t b = std::min(T - 1, a + chunk);
      const Tensor rows =
          host_logit_rows(model_.lm_head(hidden.slice(1, a, b).contiguous()), model_.config().vocab_size);
      for (int64_t i = a; i < b; ++i)
        s.prompt_logprobs.push_back(token_logprob(tok_, rows.data<float>() + (i - a) * V, V, r.prompt[i + 1],
                                                  std::max<int64_t>(r.logprobs, 0)));
    }
  }
  if (r.gen.max_new_tokens == 0) {
    finish(s, "length");
    return false;
  }
  if (!speculative(s)) s.state_.emplace(model_.new_decode_state(1, T + r.gen.max_new_tokens));
  return true;
}

bool Scheduler::speculative(const Sequence& s) const { return opt_.speculator && s.req_.logprobs < 0; }

void Scheduler::prefill(const std::vector<std::shared_ptr<Sequence>>& seqs) {
  std::vector<std::shared_ptr<Sequence>> ar, spec;
  for (const auto& s : seqs) (speculative(*s) ? spec : ar).push_back(s);
  if (!spec.empty()) {
    // Every new speculative request in one packed prefill (Speculator::start_batched).
    std::vector<std::vector<int32_t>> prompts;
    std::vector<GenerationConfig> cfgs;
    std::vector<Philox> rngs;
    for (const auto& s : spec) {
      prompts.push_back(s->req_.prompt);
      cfgs.push_back(s->req_.gen);
      rngs.push_back(Philox(s->req_.gen.sampling.seed).fork(0));
    }
    std::vector<SpeculativeSequence> started = opt_.speculator->start_batched(prompts, cfgs, std::move(rngs));
    for (size_t i = 0; i < spec.size(); ++i) {
      spec[i]->spec_.emplace(std::move(started[i]));
      if (!emit_speculative(*spec[i])) running_.push_back(spec[i]);
    }
  }
  if (ar.empty()) return;
  std::vector<DecodeState*> states;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& s : ar) states.push_back(&*s->state_), prompts.push_back(s->req_.prompt);
  const int64_t V = model_.config().vocab_size;
  const Tensor rows = host_logit_rows(prefill_batched(model_, states, prompts), V);  // [B, V]
  for (size_t b = 0; b < ar.size(); ++b) {
    Sequence& s = *ar[b];
    const float* row = rows.data<float>() + b * V;
    if (!emit(s, choose_token(row, V, s.req_.gen.sampling, s.rng_), row)) running_.push_back(ar[b]);
  }
}

bool Scheduler::emit_speculative(Sequence& s) {
  const std::vector<int32_t>& tokens = s.spec_->tokens();
  while (s.emitted_ < static_cast<int64_t>(tokens.size()))
    if (emit(s, tokens[s.emitted_], nullptr)) return true;
  if (!s.spec_->done()) return false;
  finish(s, "length", s.text_->finish());  // cannot happen: the speculator stops where emit() does
  return true;
}

void Scheduler::step() {
  std::vector<std::shared_ptr<Sequence>> ar, spec, still;
  for (auto& s : running_) (s->spec_ ? spec : ar).push_back(s);
  const int64_t B = static_cast<int64_t>(running_.size());
  peak_batch_ = std::max<int64_t>(peak_batch_, B);
  if (metrics_) metrics_->batch_step(B);
  if (!ar.empty()) {
    std::vector<DecodeState*> states;
    std::vector<int32_t> ids;
    for (auto& s : ar) states.push_back(&*s->state_), ids.push_back(s->last_);
    if (metrics_) metrics_->steps(static_cast<int64_t>(ar.size()), 0);
    const int64_t V = model_.config().vocab_size;
    const Tensor logits = host_logit_rows(decode_batched(model_, states, ids), V);  // [B, V]
    for (size_t b = 0; b < ar.size(); ++b) {
      Sequence& s = *ar[b];
      const float* row = logits.data<float>() + b * V;
      const int32_t tok = choose_token(row, V, s.req_.gen.sampling, s.rng_);
      if (!emit(s, tok, row)) still.push_back(ar[b]);
    }
  }
  if (!spec.empty()) {
    std::vector<SpeculativeSequence*> live;
    for (auto& s : spec) live.push_back(&*s->spec_);
    SpeculativeStats stats;
    const auto n = static_cast<int64_t>(live.size());
    const bool draft = opt_.speculative_max_batch < 0 ? opt_.speculator->drafting_pays(n)
                                                      : n <= opt_.speculative_max_batch;
    opt_.speculator->step(live, stats, draft);
    if (metrics_) metrics_->drafting_step(draft);
    if (metrics_) metrics_->steps(stats.steps, stats.accepted_candidates);
    for (auto& s : spec)
      if (!emit_speculative(*s)) still.push_back(s);
  }
  running_ = std::move(still);
}

bool Scheduler::drop_if_cancelled(Sequence& s) {
  if (!s.cancelled()) return false;
  finish(s, "cancelled");
  if (metrics_) metrics_->sequence_cancelled();
  return true;
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::shared_ptr<Sequence>> admitted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (running_.empty()) {
        busy_ = false;
        idle_cv_.notify_all();
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      }
      if (stop_) return;
      busy_ = true;
      std::erase_if(queue_, [&](const auto& s) { return drop_if_cancelled(*s); });
      while (!queue_.empty() &&
             static_cast<int64_t>(running_.size() + admitted.size()) < opt_.max_batch) {
        admitted.push_back(queue_.front());
        queue_.pop_front();
      }
      if (metrics_) metrics_->set_queue_depth(static_cast<int64_t>(queue_.size()));
    }
    std::erase_if(running_, [&](const auto& s) { return drop_if_cancelled(*s); });
    // One failing sequence (a kernel error, memory) must not take the others down: it ends with an error event.
    auto guarded = [&](const std::vector<std::shared_ptr<Sequence>>& who, auto&& fn) {
      try {
        fn();
      } catch (const std::exception& e) {
        std::cerr << "serve: " << e.what() << "\n";
        for (auto& s : who) {
          std::erase(running_, s);
          finish(*s, "error", "", e.what());
        }
      }
    };
    std::vector<std::shared_ptr<Sequence>> to_prefill;
    for (auto& s : admitted) guarded({s}, [&] {
        if (admit(s)) to_prefill.push_back(s);
      });
    if (!to_prefill.empty()) guarded(to_prefill, [&] { prefill(to_prefill); });
    update_gauges();
    if (!running_.empty()) {
      auto batch = running_;
      guarded(batch, [&] { step(); });
    }
    update_gauges();
  }
}

}  // namespace linspec::serve
