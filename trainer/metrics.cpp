#include "trainer/metrics.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "trainer/atomic_file.h"

namespace linspec::trainer {

namespace fs = std::filesystem;

nlohmann::json step_metrics_json(const StepMetrics& m) {
  nlohmann::json j = {{"step", m.step}, {"loss", m.loss}};
  for (const auto& [name, value] : m.objectives) {
    LINSPEC_CHECK(!j.contains(name) && name != "lr" && name != "grad_norm" && name != "tokens_per_s",
                  "objective name '", name, "' clashes with a metrics key");
    j[name] = value;
  }
  j["lr"] = m.lr;
  j["grad_norm"] = m.grad_norm;
  j["tokens_per_s"] = m.tokens_per_s;
  return j;
}

nlohmann::json val_metrics_json(int64_t step, double val_loss, const std::vector<std::pair<std::string, double>>& extra) {
  nlohmann::json j = {{"step", step}, {"val_loss", val_loss}, {"val_ppl", std::exp(val_loss)}};
  for (const auto& [name, value] : extra) {
    LINSPEC_CHECK(!j.contains("val_" + name), "validation value '", name, "' clashes with a metrics key");
    j["val_" + name] = value;
  }
  return j;
}

std::string metrics_path(const std::string& checkpoint_dir) {
  return (fs::path(checkpoint_dir) / "metrics.jsonl").string();
}

void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::string kept, line;
  bool changed = false;
  while (std::getline(in, line)) {
    // A line without its newline is one a crash cut short.
    const bool complete = !in.eof();
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    const bool keep = complete && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
                      j["step"].get<int64_t>() <= step;
    if (keep) kept += line + "\n";
    else changed = true;
  }
  in.close();
  if (changed) write_text_atomically(path, kept);
}

MetricsLog::MetricsLog(const std::string& path, std::optional<int64_t> resumed_step) : path_(path) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (resumed_step) truncate_metrics(path, *resumed_step);
  file_ = std::fopen(path.c_str(), resumed_step ? "a" : "w");
  if (!file_) throw_input_error(path, ": cannot open the metrics log for writing: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::append(const nlohmann::json& j) {
  // NaN / inf (a diverged loss) are written as null, which keeps every line valid JSON.
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw_input_error(path_, ": cannot append to the metrics log: ", std::strerror(errno));
}

void MetricsLog::log_step(const StepMetrics& m) { append(step_metrics_json(m)); }
void MetricsLog::log_profile(int64_t step, const nlohmann::json& profile) {
  append({{"step", step}, {"profile", profile}});
}

void MetricsLog::log_val(int64_t step, double val_loss, const std::vector<std::pair<std::string, double>>& extra) {
  append(val_metrics_json(step, val_loss, extra));
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else if (s < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  else
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400), static_cast<long long>(s % 86400 / 3600));
  return buf;
}

std::string format_progress(const StepMetrics& m, double eta_seconds) {
  char buf[64];
  std::ostringstream os;
  os << "step " << m.step << "/" << m.total_steps;
  std::snprintf(buf, sizeof buf, "%.4f", m.loss);
  os << " | loss " << buf;
  if (!m.objectives.empty()) {
    os << " (";
    for (size_t i = 0; i < m.objectives.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%.4f", m.objectives[i].second);
      os << (i ? ", " : "") << m.objectives[i].first << " " << buf;
    }
    os << ")";
  }
  std::snprintf(buf, sizeof buf, "%.2e", m.lr);
  os << " | lr " << buf;
  std::snprintf(buf, sizeof buf, "%.3f", m.grad_norm);
  os << " | gnorm " << buf;
  std::snprintf(buf, sizeof buf, "%.0f", m.tokens_per_s);
  os << " | " << buf << " tok/s | ETA " << format_duration(eta_seconds);
  return os.str();
}

ProgressLine::ProgressLine(std::ostream& out, bool tty, int64_t start_step)
    : out_(out), tty_(tty), start_step_(start_step), start_(std::chrono::steady_clock::now()) {}

ProgressLine ProgressLine::for_stderr(int64_t start_step) {
  return ProgressLine(std::cerr, ::isatty(STDERR_FILENO) == 1, start_step);
}

void ProgressLine::update(const StepMetrics& m) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done = m.step - start_step_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(m.total_steps - m.step) : -1;
  const std::string text = format_progress(m, eta);
  if (tty_) {
    out_ << '\r' << text << "\x1b[K" << std::flush;  // back to column 0, draw, clear what a longer line left
    line_open_ = true;
  } else {
    out_ << text << '\n' << std::flush;
  }
}

void ProgressLine::note(const std::string& message) {
  if (line_open_) out_ << "\r\x1b[K";  // the next update redraws the progress line below the note
  out_ << message << '\n' << std::flush;
  line_open_ = false;
}

void ProgressLine::finish() {
  if (!line_open_) return;
  out_ << '\n' << std::flush;
  line_open_ = false;
}

}  // namespace linspec::trainer
