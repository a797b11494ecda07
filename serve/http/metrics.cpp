#include "serve/http/metrics.h"

#include <sstream>

namespace linspec::serve {

void Metrics::request_done(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::generated_tokens(int64_t n) {
  generated_ += n;
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  recent_.emplace_back(now, n);
  while (!recent_.empty() && now - recent_.front().first > std::chrono::seconds(60)) recent_.pop_front();
}

void Metrics::steps(int64_t steps, int64_t accepted) {
  steps_ += steps;
  accepted_ += accepted;
}

void Metrics::batch_step(int64_t batch_size) {
  ++batch_steps_;
  batch_rows_ += batch_size;
}

void Metrics::time_to_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_sum_ += seconds;
  ++ttft_count_;
}

double Metrics::tokens_per_second(double window_s) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  int64_t n = 0;
  for (const auto& [t, k] : recent_)
    if (std::chrono::duration<double>(now - t).count() <= window_s) n += k;
  return n / window_s;
}

std::string Metrics::prometheus() const {
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  const double rate = tokens_per_second();
  std::lock_guard<std::mutex> lock(mu_);
  metric("linspec_requests_total", "counter", "HTTP requests by endpoint and status");
  for (const auto& [key, n] : requests_)
    o << "linspec_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
  metric("linspec_prompt_tokens_total", "counter", "Prompt tokens prefilled");
  o << "linspec_prompt_tokens_total " << prompt_tokens_ << '\n';
  metric("linspec_generated_tokens_total", "counter", "Tokens generated");
  o << "linspec_generated_tokens_total " << generated_ << '\n';
  metric("linspec_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s");
  o << "linspec_tokens_per_second " << rate << '\n';
  metric("linspec_steps_total", "counter",
         "Target model steps per sequence (AR decode steps and speculative verifications)");
  o << "linspec_steps_total " << steps_ << '\n';
  metric("linspec_accepted_draft_tokens_total", "counter", "Draft tokens the target accepted");
  o << "linspec_accepted_draft_tokens_total " << accepted_ << '\n';
  metric("linspec_mean_accepted_tokens_per_step", "gauge",
         "Accepted draft tokens per target step (0 without speculation)");
  o << "linspec_mean_accepted_tokens_per_step " << (steps_ ? static_cast<double>(accepted_) / steps_ : 0.0) << '\n';
  metric("linspec_speculative_engine_steps_total", "counter",
         "Engine steps over the speculative sequences, by whether they drafted (no: drafting did not pay at that load)");
  o << "linspec_speculative_engine_steps_total{drafted=\"yes\"} " << drafting_steps_ << '\n';
  o << "linspec_speculative_engine_steps_total{drafted=\"no\"} " << plain_steps_ << '\n';
  metric("linspec_mean_batch_size", "gauge", "Sequences per batched decode step");
  o << "linspec_mean_batch_size " << (batch_steps_ ? static_cast<double>(batch_rows_) / batch_steps_ : 0.0) << '\n';
  metric("linspec_queue_depth", "gauge", "Requests waiting for a batch slot");
  o << "linspec_queue_depth " << queue_depth_ << '\n';
  metric("linspec_running_sequences", "gauge", "Sequences in the running batch");
  o << "linspec_running_sequences " << running_ << '\n';
  metric("linspec_cancelled_sequences_total", "counter",
         "Sequences stopped before they finished because their client disconnected");
  o << "linspec_cancelled_sequences_total " << cancelled_ << '\n';
  metric("linspec_time_to_first_token_seconds", "summary", "Time from admission request to first token");
  o << "linspec_time_to_first_token_seconds_sum " << ttft_sum_ << '\n';
  o << "linspec_time_to_first_token_seconds_count " << ttft_count_ << '\n';
  return o.str();
}

}  // namespace linspec::serve
