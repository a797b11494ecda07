// Shared pieces of the JSON reports written by eval / verify / bench: machine description and an atomic
// writer (temp file + rename, so a report is either complete or absent).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace linspec {

// {"cpu": model name, "cores": n, "threads": OpenMP threads, "gpu": name or null}
nlohmann::json hardware_description();
void write_json_atomically(const std::string& path, const nlohmann::json& j);

}  // namespace linspec
