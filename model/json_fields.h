// Typed access to JSON fields with user-facing errors: every failure names the file (`where`) and the key.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace linspec::json_fields {

using nlohmann::json;

inline const char* kind(const json& v) { return v.type_name(); }

template <typename T>
T convert(const json& v, const std::string& key, const std::string& where) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.get<bool>();
    throw_input_error(where, ": key '", key, "': expected a boolean, got ", kind(v));
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_integer()) {
      // Reject values that do not fit T instead of wrapping.
      if (v.is_number_unsigned()) {
        auto u = v.get<uint64_t>();
        if (u <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
      } else {
        auto s = v.get<int64_t>();
        if (s >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
            (s < 0 || static_cast<uint64_t>(s) <= static_cast<uint64_t>(std::numeric_limits<T>::max())))
          return static_cast<T>(s);
      }
      throw_input_error(where, ": key '", key, "': integer ", v.dump(), " out of range");
    }
    throw_input_error(where, ": key '", key, "': expected an integer, got ", kind(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) return v.get<T>();
    throw_input_error(where, ": key '", key, "': expected a number, got ", kind(v));
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.get<std::string>();
    throw_input_error(where, ": key '", key, "': expected a string, got ", kind(v));
  } else {
    static_assert(sizeof(T) == 0, "unsupported field type");
  }
}

inline const json& require(const json& j, const std::string& key, const std::string& where) {
  if (!j.is_object()) throw_input_error(where, ": expected a JSON object holding key '", key, "'");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw_input_error(where, ": missing key '", key, "'");
  return *it;
}

template <typename T>
T get(const json& j, const std::string& key, const std::string& where) {
  return convert<T>(require(j, key, where), key, where);
}

// A missing or null key gives `fallback`; a present key of the wrong type is still an error.
template <typename T>
T get_or(const json& j, const std::string& key, T fallback, const std::string& where) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return convert<T>(*it, key, where);
}

inline bool has(const json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && !j.at(key).is_null();
}

}  // namespace linspec::json_fields
