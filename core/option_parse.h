// Values of `key=value` options (`--set`, attention option strings): each parser throws an InputError
// "<where>: option <key>: '<value>' is not ..." on a malformed value, so every caller reports bad input alike.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace linspec {

inline int64_t parse_option_int(const std::string& where, const std::string& key, const std::string& value) {
  char* end = nullptr;
  const long long x = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') throw_input_error(where, ": option ", key, ": '", value, "' is not an integer");
  return x;
}

inline uint64_t parse_option_u64(const std::string& where, const std::string& key, const std::string& value) {
  char* end = nullptr;
  const unsigned long long x = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || value[0] == '-' || *end != '\0')
    throw_input_error(where, ": option ", key, ": '", value, "' is not a non-negative integer");
  return x;
}

inline double parse_option_double(const std::string& where, const std::string& key, const std::string& value) {
  char* end = nullptr;
  const double x = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') throw_input_error(where, ": option ", key, ": '", value, "' is not a number");
  return x;
}

inline bool parse_option_bool(const std::string& where, const std::string& key, const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  throw_input_error(where, ": option ", key, ": '", value, "' is not a boolean (true/false)");
}

// The canonical text of a number: the shortest of %.15g / %.17g that reads back as the same double.
inline std::string option_number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", x);
  if (std::strtod(buf, nullptr) != x) std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

}  // namespace linspec
