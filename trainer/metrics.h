// Training progress for people and for plots (rank 0 only).
//
// metrics.jsonl (in checkpoint.dir): one JSON object per line, appended and flushed line by line, so a crash
// loses at most the line being written:
//   {"step":10,"loss":3.21,"ce":3.1,"kd":0.11,"lr":2e-05,"grad_norm":0.81,"tokens_per_s":1234.5}
//   {"step":100,"val_loss":2.9,"val_ppl":18.17}            (+ "val_heads_kl", "val_head1_kl", ... with drafts)
// On resume from step S the lines with step > S (written after the snapshot, by the run that died) are dropped,
// so the log tells one consistent history; launch/plot_metrics draws it.
//
// The progress line: step/total, loss and each objective, lr, grad norm, tokens/s and ETA; on a TTY a single
// line rewritten in place, otherwise one plain line per update (logs, Slurm output files).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace linspec::trainer {

struct StepMetrics {
  int64_t step = 0;         // optimizer updates completed
  int64_t total_steps = 0;  // train.steps
  double loss = 0;          // the weighted sum that was minimised
  std::vector<std::pair<std::string, double>> objectives;  // each objective's own value, by name ("ce", "kd", ...)
  double lr = 0, grad_norm = 0, tokens_per_s = 0;
};

// The JSON object of one metrics.jsonl line.
nlohmann::json step_metrics_json(const StepMetrics& m);
// `extra`: more validation values, written as "val_<name>".
nlohmann::json val_metrics_json(int64_t step, double val_loss,
                                const std::vector<std::pair<std::string, double>>& extra = {});

// <checkpoint_dir>/metrics.jsonl
std::string metrics_path(const std::string& checkpoint_dir);

// Keeps the lines whose step is <= `step` and drops the rest, including a torn last line; rewrites the file
// atomically. Nothing to do when the file does not exist.
void truncate_metrics(const std::string& path, int64_t step);

class MetricsLog {
 public:
  // Opens `path` for appending (creating its directory). resumed_step: the snapshot step a resumed run starts
  // from (later lines are dropped first); nullopt for a fresh run, which starts the file empty.
  MetricsLog(const std::string& path, std::optional<int64_t> resumed_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void log_step(const StepMetrics& m);
  void log_val(int64_t step, double val_loss, const std::vector<std::pair<std::string, double>>& extra = {});
  // {"step": step, "profile": profile} (trainer/step_profile.h), for log.profile_every.
  void log_profile(int64_t step, const nlohmann::json& profile);
  const std::string& path() const { return path_; }

 private:
  void append(const nlohmann::json& j);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// "42s", "3m05s", "2h07m", "3d04h"
std::string format_duration(double seconds);
// The progress text without terminal control characters, e.g.
// "step 120/1000 | loss 3.2101 (ce 3.1802, kd 0.0299) | lr 2.00e-05 | gnorm 0.812 | 1234 tok/s | ETA 5m12s"
// (negative eta: "ETA --").
std::string format_progress(const StepMetrics& m, double eta_seconds);

class ProgressLine {
 public:
  // start_step: the step the run (re)started from, so the ETA uses only this run's pace.
  ProgressLine(std::ostream& out, bool tty, int64_t start_step);
  // Writes to std::cerr, rewriting in place when stderr is a terminal.
  static ProgressLine for_stderr(int64_t start_step);
  ~ProgressLine() { finish(); }

  void update(const StepMetrics& m);
  // A message of its own (validation result, "snapshot written"), not overwritten by the next update.
  void note(const std::string& message);
  // Ends an in-place line with a newline (idempotent).
  void finish();

 private:
  std::ostream& out_;
  bool tty_;
  int64_t start_step_;
  std::chrono::steady_clock::time_point start_;
  bool line_open_ = false;  // a TTY line is showing and has no newline yet
};

}  // namespace linspec::trainer
