// Helpers shared by the tokenizer tests: locating the cached model files, reading files, xxh64 of ids.
#pragma once
#include <xxhash.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "model/tokenizer_data.h"

namespace linspec::testing {

inline std::filesystem::path linspec_cache_dir() {
  if (const char* env = std::getenv("LINSPEC_CACHE"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/root") / ".cache" / "linspec";
}

inline std::filesystem::path source_path(const std::string& path) {
  std::filesystem::path p(path);
  return p.is_absolute() ? p : std::filesystem::path(LINSPEC_SOURCE_DIR) / p;
}

// Whole file as bytes; false when it cannot be opened.
inline bool read_file(const std::filesystem::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// xxh64 of ids written as little-endian u32, as the golden scripts compute it.
inline uint64_t xxh64_of_ids(const int32_t* ids, size_t n) {
  std::vector<unsigned char> le(n * 4);
  for (size_t i = 0; i < n; ++i)
    for (int b = 0; b < 4; ++b) le[4 * i + b] = (uint32_t(ids[i]) >> (8 * b)) & 0xFF;
  return XXH64(le.data(), le.size(), 0);
}

inline std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace linspec::testing
