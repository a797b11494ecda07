// Test helpers for the model-file readers: a per-process scratch directory (removed at exit), file I/O, and a
// GGUF builder that writes files byte by byte, including deliberately malformed ones.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace linspec::testing {

template <typename T>
void put(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s.append(b, sizeof(T));
}
inline void put_str(std::string& s, const std::string& v) {
  put<uint64_t>(s, v.size());
  s += v;
}

struct GgufBuilder {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::string kv;  // encoded key/value pairs
  uint64_t n_kv = 0;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type = 0;
    std::string data;
    std::optional<uint64_t> offset;  // relative; computed (in order, aligned) when unset
  };
  std::vector<Tensor> tensors;

  // ---- metadata (type ids as in the GGUF spec) ----
  void raw_kv(const std::string& key, uint32_t type, const std::string& value_bytes) {
    put_str(kv, key);
    put<uint32_t>(kv, type);
    kv += value_bytes;
    ++n_kv;
  }
  void u32(const std::string& key, uint32_t v) { std::string b; put(b, v); raw_kv(key, 4, b); }
  void f32(const std::string& key, float v) { std::string b; put(b, v); raw_kv(key, 6, b); }
  void boolean(const std::string& key, bool v) { raw_kv(key, 7, std::string(1, v ? 1 : 0)); }
  void str(const std::string& key, const std::string& v) { std::string b; put_str(b, v); raw_kv(key, 8, b); }
  void str_array(const std::string& key, const std::vector<std::string>& v) {
    std::string b;
    put<uint32_t>(b, 8);
    put<uint64_t>(b, v.size());
    for (const auto& s : v) put_str(b, s);
    raw_kv(key, 9, b);
  }
  void i32_array(const std::string& key, const std::vector<int32_t>& v) {
    std::string b;
    put<uint32_t>(b, 5);
    put<uint64_t>(b, v.size());
    for (int32_t x : v) put(b, x);
    raw_kv(key, 9, b);
  }

  void tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data) {
    tensors.push_back({name, std::move(ne), type, std::move(data), std::nullopt});
  }
  void f32_tensor(const std::string& name, std::vector<uint64_t> ne, const std::vector<float>& values) {
    std::string d(values.size() * 4, '\0');
    std::memcpy(d.data(), values.data(), d.size());
    tensor(name, std::move(ne), 0, std::move(d));
  }

  std::string build() const {
    std::string s;
    put(s, magic);
    put(s, version);
    put<uint64_t>(s, tensors.size());
    put<uint64_t>(s, n_kv);
    s += kv;
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const auto& t : tensors) {
      uint64_t off = t.offset ? *t.offset : next;
      offsets.push_back(off);
      next = std::max(next, (off + t.data.size() + alignment - 1) / alignment * alignment);
      put_str(s, t.name);
      put<uint32_t>(s, static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) put(s, d);
      put(s, t.type);
      put(s, off);
    }
    s.resize((s.size() + alignment - 1) / alignment * alignment, '\0');
    const size_t data_start = s.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const size_t at = data_start + offsets[i];
      if (s.size() < at + tensors[i].data.size()) s.resize(at + tensors[i].data.size(), '\0');
      std::memcpy(s.data() + at, tensors[i].data.data(), tensors[i].data.size());
    }
    return s;
  }
};

inline const std::filesystem::path& scratch_dir() {
  static const struct Dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("linspec_test_" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } dir;
  return dir.path;
}

inline std::string temp_path(const std::string& name) { return (scratch_dir() / name).string(); }

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The InputError message of f() (a malformed input refused with exit 2), or "accepted".
inline std::string input_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace linspec::testing
