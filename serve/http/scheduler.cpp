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

void Scheduler::admit(const std::shared_ptr<Sequence>& sp) {
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
    return;
  }
  // Prefill exactly as generate() does: the whole prompt in one decode call, logits of the last position only.
  s.state_.emplace(model_.new_decode_state(1, T + r.gen.max_new_tokens));
  const Tensor row = host_logit_rows(model_.decode(*s.state_, ids, true), model_.config().vocab_size);
  const int32_t tok = choose_token(row.data<float>(), model_.config().vocab_size, r.gen.sampling, s.rng_);
  if (!emit(s, tok, row.data<float>())) running_.push_back(sp);
}

void Scheduler::step() {
  std::vector<DecodeState*> states;
  std::vector<int32_t> ids;
  for (auto& s : running_) states.push_back(&*s->state_), ids.push_back(s->last_);
  const int64_t B = static_cast<int64_t>(running_.size());
  peak_batch_ = std::max<int64_t>(peak_batch_, B);
  if (metrics_) metrics_->batch_step(B), metrics_->steps(B, 0);
  const Tensor logits = host_logit_rows(decode_batched(model_, states, ids), model_.config().vocab_size);  // [B, V]
  const int64_t V = model_.config().vocab_size;
  std::vector<std::shared_ptr<Sequence>> still;
  for (int64_t b = 0; b < B; ++b) {
    Sequence& s = *running_[b];
    const float* row = logits.data<float>() + b * V;
    const int32_t tok = choose_token(row, V, s.req_.gen.sampling, s.rng_);
    if (!emit(s, tok, row)) still.push_back(running_[b]);
  }
  running_ = std::move(still);
}

std::vector<std::shared_ptr<Sequence>> Scheduler::take_speculative_group() {
  // Caller holds mu_. The first queued request without logprobs leads; greedy requests with the same max_tokens and
  // stop ids join it (the Speculator's static batch shares one GenerationConfig).
  std::vector<std::shared_ptr<Sequence>> group;
  if (!opt_.speculator) return group;
  auto eligible = [](const Sequence& s) { return s.req_.logprobs < 0; };
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const auto& s) { return eligible(*s); });
  if (it == queue_.end()) return group;
  const GenerationConfig& lead = (*it)->req_.gen;
  const bool greedy = lead.sampling.temperature == 0.0;
  for (auto j = it; j != queue_.end() && static_cast<int64_t>(group.size()) < opt_.max_batch;) {
    const GenerationConfig& g = (*j)->req_.gen;
    if (eligible(**j) && (j == it || (greedy && g.sampling.temperature == 0.0 &&
                                      g.max_new_tokens == lead.max_new_tokens && g.stop_ids == lead.stop_ids))) {
      group.push_back(*j);
      j = queue_.erase(j);
      if (!greedy) break;
    } else {
      ++j;
    }
  }
  return group;
}

void Scheduler::run_speculative(std::vector<std::shared_ptr<Sequence>> group) {
  std::vector<std::vector<int32_t>> prompts;
  for (auto& s : group) {
    s->text_.emplace(tok_, s->req_.stop);
    prompts.push_back(s->req_.prompt);
    if (metrics_) metrics_->prompt_tokens(static_cast<int64_t>(s->req_.prompt.size()));
  }
  GenerationConfig cfg = group[0]->req_.gen;
  if (cfg.max_new_tokens == 0) {
    for (auto& s : group) finish(*s, "length");
    return;
  }
  SpeculativeStats stats;
  const auto results = opt_.speculator->generate(prompts, cfg, &stats);
  if (metrics_) metrics_->steps(stats.steps, stats.accepted_candidates);
  for (size_t i = 0; i < group.size(); ++i) {
    Sequence& s = *group[i];
    bool done = false;
    for (int32_t tok : results[i].tokens)
      if ((done = emit(s, tok, nullptr))) break;
    if (!done) finish(s, "length", s.text_->finish());  // cannot happen: the speculator stops where emit() does
  }
}

bool Scheduler::drop_if_cancelled(Sequence& s) {
  if (!s.cancelled()) return false;
  finish(s, "cancelled");
  if (metrics_) metrics_->sequence_cancelled();
  return true;
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::shared_ptr<Sequence>> admitted, spec_group;
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
      spec_group = take_speculative_group();
      while (spec_group.empty() && !queue_.empty() &&
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
    if (!spec_group.empty()) guarded(spec_group, [&] { run_speculative(spec_group); });
    for (auto& s : admitted) guarded({s}, [&] { admit(s); });
    update_gauges();
    if (!running_.empty()) {
      auto batch = running_;
      guarded(batch, [&] { step(); });
    }
    update_gauges();
  }
}

}  // namespace linspec::serve
