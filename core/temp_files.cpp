#include "core/temp_files.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace linspec {

namespace fs = std::filesystem;

namespace {
constexpr const char* kMarker = ".tmp.";

bool process_runs(long pid) {
  if (pid <= 0) return true;  // not a pid we can judge: keep the file
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}
}  // namespace

std::string temporary_path(const std::string& path) { return path + kMarker + std::to_string(::getpid()); }

bool is_temporary_name(const std::string& file_name) {
  const size_t at = file_name.rfind(kMarker);
  if (at == std::string::npos || at == 0 || at + 5 == file_name.size()) return false;
  for (size_t i = at + 5; i < file_name.size(); ++i)
    if (file_name[i] < '0' || file_name[i] > '9') return false;
  return true;
}

std::string target_of_temporary(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  if (!is_temporary_name(name)) return path;
  return path.substr(0, path.size() - (name.size() - name.rfind(kMarker)));
}

std::vector<std::string> remove_stale_temporaries(const std::string& path) {
  const fs::path target(path);
  const std::string prefix = target.filename().string() + kMarker;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !is_temporary_name(name) || name.size() - prefix.size() > 9) continue;
    if (process_runs(std::stol(name.substr(prefix.size())))) continue;
    std::error_code rm;
    if (entry.is_regular_file(rm) && fs::remove(entry.path(), rm)) removed.push_back(entry.path().string());
  }
  return removed;
}

}  // namespace linspec
