// metrics.jsonl (content, flushing, truncation on resume, torn last line) and the progress line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "trainer/metrics.h"

using namespace linspec::trainer;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("linspec_metrics_" + std::to_string(::getpid()) + "_" + std::to_string(next_++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
  static inline int next_ = 0;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  for (const auto& line : read_lines(path)) out.push_back(json::parse(line));
  return out;
}

StepMetrics metrics_at(int64_t step) {
  StepMetrics m;
  m.step = step;
  m.total_steps = 100;
  m.objectives = {{"ce", 3.0 + 0.1 / static_cast<double>(step)}, {"kd", 0.0123456789}};
  m.loss = m.objectives[0].second + 0.5 * m.objectives[1].second;
  m.lr = 2e-5 * static_cast<double>(step) / 10;
  m.grad_norm = 0.75 + static_cast<double>(step);
  m.tokens_per_s = 1234.5;
  return m;
}

}  // namespace

TEST(Metrics, StepLineHasEveryKeyWithExactValues) {
  TempDir dir;
  const std::string path = metrics_path(dir.str());
  EXPECT_EQ(path, dir.file("metrics.jsonl"));
  {
    MetricsLog log(path, std::nullopt);
    log.log_step(metrics_at(10));
    // Flushed per line: visible to a reader before the log is closed.
    const auto lines = read_lines(path);
    ASSERT_EQ(lines.size(), 1u);
    log.log_val(10, 2.0);
  }
  const auto entries = read_jsonl(path);
  ASSERT_EQ(entries.size(), 2u);
  const StepMetrics m = metrics_at(10);
  const json& s = entries[0];
  EXPECT_EQ(s.size(), 7u) << s.dump();
  EXPECT_EQ(s.at("step"), 10);
  EXPECT_EQ(s.at("loss").get<double>(), m.loss);  // doubles survive the text round trip exactly
  EXPECT_EQ(s.at("ce").get<double>(), m.objectives[0].second);
  EXPECT_EQ(s.at("kd").get<double>(), m.objectives[1].second);
  EXPECT_EQ(s.at("lr").get<double>(), m.lr);
  EXPECT_EQ(s.at("grad_norm").get<double>(), m.grad_norm);
  EXPECT_EQ(s.at("tokens_per_s").get<double>(), 1234.5);
  const json& v = entries[1];
  EXPECT_EQ(v.at("step"), 10);
  EXPECT_EQ(v.at("val_loss").get<double>(), 2.0);
  EXPECT_NEAR(v.at("val_ppl").get<double>(), 7.38905609893065, 1e-12);
}

TEST(Metrics, ValidationExtrasArePrefixedAndMayNotClash) {
  const json j = val_metrics_json(4, 1.5, {{"heads_kl", 0.25}, {"head1_kl", 0.125}});
  EXPECT_EQ(j.size(), 5u) << j.dump();
  EXPECT_EQ(j.at("val_heads_kl").get<double>(), 0.25);
  EXPECT_EQ(j.at("val_head1_kl").get<double>(), 0.125);
  EXPECT_THROW(val_metrics_json(4, 1.5, {{"loss", 1.0}}), std::exception);  // would overwrite val_loss
}

TEST(Metrics, NonFiniteLossStaysValidJson) {
  TempDir dir;
  MetricsLog log(dir.file("m.jsonl"), std::nullopt);
  StepMetrics m = metrics_at(1);
  m.loss = std::nan("");
  log.log_step(m);
  const auto entries = read_jsonl(dir.file("m.jsonl"));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].at("loss").is_null());
}

TEST(Metrics, FreshRunStartsAnEmptyLog) {
  TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  { MetricsLog(path, std::nullopt).log_step(metrics_at(1)); }
  { MetricsLog(path, std::nullopt).log_step(metrics_at(2)); }
  const auto entries = read_jsonl(path);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].at("step"), 2);
}

TEST(Metrics, ResumeDropsLinesAfterTheSnapshotAndATornLine) {
  TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  {
    MetricsLog log(path, std::nullopt);
    for (int64_t step : {10, 20, 30, 40}) log.log_step(metrics_at(step));
    log.log_val(20, 2.5);
    log.log_val(40, 2.4);
  }
  { std::ofstream(path, std::ios::app) << R"({"step":50,"loss":)"; }  // the crash cut this line short

  {
    MetricsLog log(path, 20);  // resumed from snapshot-20
    auto entries = read_jsonl(path);
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].at("step"), 10);
    EXPECT_EQ(entries[1].at("step"), 20);
    EXPECT_EQ(entries[2].at("val_loss").get<double>(), 2.5);
    log.log_step(metrics_at(30));
  }
  const auto entries = read_jsonl(path);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[3].at("step"), 30);
  for (const auto& e : fs::directory_iterator(dir.str()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(Metrics, TruncateKeepsAnIntactFileAndIgnoresAMissingOne) {
  TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  truncate_metrics(path, 5);
  EXPECT_FALSE(fs::exists(path));
  {
    MetricsLog log(path, std::nullopt);
    log.log_step(metrics_at(1));
    log.log_step(metrics_at(2));
  }
  const auto before = read_lines(path);
  truncate_metrics(path, 2);
  EXPECT_EQ(read_lines(path), before);
  truncate_metrics(path, 0);
  EXPECT_TRUE(read_lines(path).empty());
}

TEST(Metrics, UnwritableLogIsAnInputError) {
  TempDir dir;
  fs::create_directories(dir.file("metrics.jsonl"));  // a directory where the file should go
  EXPECT_THROW(MetricsLog(dir.file("metrics.jsonl"), std::nullopt), linspec::InputError);
}

TEST(Progress, Durations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(3 * 60 + 5), "3m05s");
  EXPECT_EQ(format_duration(2 * 3600 + 7 * 60 + 30), "2h07m");
  EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600), "3d04h");
  EXPECT_EQ(format_duration(-1), "--");
  EXPECT_EQ(format_duration(INFINITY), "--");
}

TEST(Progress, LineShowsEveryQuantity) {
  StepMetrics m;
  m.step = 120;
  m.total_steps = 1000;
  m.loss = 3.21014;
  m.objectives = {{"ce", 3.18021}, {"kd", 0.02993}};
  m.lr = 2e-5;
  m.grad_norm = 0.8123;
  m.tokens_per_s = 1234.4;
  EXPECT_EQ(format_progress(m, 312),
            "step 120/1000 | loss 3.2101 (ce 3.1802, kd 0.0299) | lr 2.00e-05 | gnorm 0.812 | 1234 tok/s | ETA 5m12s");
  m.objectives.clear();
  EXPECT_EQ(format_progress(m, -1), "step 120/1000 | loss 3.2101 | lr 2.00e-05 | gnorm 0.812 | 1234 tok/s | ETA --");
}

TEST(Progress, TerminalRewritesOneLinePlainOutputAppends) {
  std::ostringstream tty_out, plain_out;
  {
    ProgressLine tty(tty_out, /*tty=*/true, 0), plain(plain_out, /*tty=*/false, 0);
    for (int64_t step : {1, 2}) {
      tty.update(metrics_at(step));
      plain.update(metrics_at(step));
    }
    const std::string drawn = tty_out.str();
    EXPECT_EQ(drawn.find('\n'), std::string::npos);  // one line, redrawn
    EXPECT_EQ(std::count(drawn.begin(), drawn.end(), '\r'), 2);
    EXPECT_NE(drawn.find("\x1b[K"), std::string::npos);
    tty.note("snapshot written");
    plain.note("snapshot written");
  }  // destructors end an open line
  const std::string t = tty_out.str(), p = plain_out.str();
  EXPECT_NE(t.find("\r\x1b[Ksnapshot written\n"), std::string::npos) << t;
  EXPECT_EQ(p.find('\r'), std::string::npos);
  EXPECT_EQ(p.find('\x1b'), std::string::npos);
  EXPECT_EQ(std::count(p.begin(), p.end(), '\n'), 3);
  EXPECT_EQ(p.find("step 1/100 | "), 0u);
  EXPECT_NE(p.find("\nstep 2/100 | "), std::string::npos);
}
