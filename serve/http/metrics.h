// Counters the server exports at GET /metrics in Prometheus' text format (version 0.0.4). Updated from the HTTP
// threads and the scheduler thread, so every field is atomic or behind the mutex; rendering takes a snapshot.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace linspec::serve {

class Metrics {
 public:
  // One finished HTTP request on `endpoint` with `status`.
  void request_done(const std::string& endpoint, int status);
  void prompt_tokens(int64_t n) { prompt_tokens_ += n; }
  // Tokens emitted by the scheduler (feeds the rate over the last window_s).
  void generated_tokens(int64_t n);
  // One target step (batched AR step or speculative verification) that emitted `tokens` for one sequence and accepted
  // `accepted` draft tokens: mean accepted tokens per step = accepted / steps.
  void steps(int64_t steps, int64_t accepted);
  void batch_step(int64_t batch_size);
  // One engine step over the speculative sequences, drafting or not (SchedulerOptions::speculative_max_batch).
  void drafting_step(bool drafted) { ++(drafted ? drafting_steps_ : plain_steps_); }
  void time_to_first_token(double seconds);
  // A sequence dropped before it finished because its client went away (or the server gave up on it).
  void sequence_cancelled() { ++cancelled_; }
  void set_queue_depth(int64_t n) { queue_depth_ = n; }
  void set_running(int64_t n) { running_ = n; }

  // Tokens per second over the last `window_s` seconds.
  double tokens_per_second(double window_s = 10.0) const;
  std::string prometheus() const;

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::deque<std::pair<Clock::time_point, int64_t>> recent_;  // (when, tokens) for the rate
  double ttft_sum_ = 0;
  int64_t ttft_count_ = 0;
  std::atomic<int64_t> prompt_tokens_{0}, generated_{0}, steps_{0}, accepted_{0}, batch_steps_{0}, batch_rows_{0};
  std::atomic<int64_t> queue_depth_{0}, running_{0}, cancelled_{0}, drafting_steps_{0}, plain_steps_{0};
};

}  // namespace linspec::serve
