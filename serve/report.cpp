#include "serve/report.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "core/device.h"
#include "core/error.h"
#include "core/threads.h"

namespace linspec {

nlohmann::json hardware_description() {
  std::string cpu = "unknown";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  nlohmann::json j;
  j["cpu"] = cpu;
  j["cores"] = std::thread::hardware_concurrency();
  j["threads"] = num_threads();
  j["gpu"] = cuda_available() ? nlohmann::json("cuda") : nlohmann::json(nullptr);
  return j;
}

void write_json_atomically(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp);
    if (!out) throw_input_error(path, ": cannot write the report (directory missing or not writable?)");
    out << j.dump(2) << "\n";
    if (!out.flush()) {
      std::remove(tmp.c_str());
      throw_input_error(path, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw_input_error(path, ": cannot move the report into place");
  }
}

}  // namespace linspec
