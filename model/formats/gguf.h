// GGUF (v2/v3, little-endian) reader. The whole header is validated when the file is opened, so every later
// access can trust offsets and sizes; any violation is an InputError naming the file and the key or tensor.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"
#include "model/formats/gguf_dequant.h"
#include "model/formats/mapped_file.h"

namespace linspec {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
  ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

// One metadata value. Integers keep their sign class, floats are widened to double, arrays hold their elements.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  GgufValueType elem_type = GgufValueType::UINT8;  // arrays only
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // GGUF order: ne[0] is the innermost (contiguous) dimension
  ggml::TypeInfo type;
  uint64_t offset = 0;  // absolute offset of the first byte in the file
  uint64_t nbytes = 0;
  int64_t numel = 0;
  // Row-major shape as HF and linspec write it (ne reversed).
  Shape shape() const { return Shape(ne.rbegin(), ne.rend()); }
};

// Validation limits: generous for real models, small enough that a hostile header cannot exhaust memory.
struct GgufLimits {
  static constexpr uint64_t kMaxStringBytes = 1ull << 24;
  static constexpr uint64_t kMaxArrayElements = 1ull << 26;
  static constexpr uint64_t kMaxTensors = 1ull << 20;
  static constexpr uint64_t kMaxKeys = 1ull << 20;
  static constexpr uint32_t kMaxDims = 4;
  static constexpr int kMaxArrayNesting = 2;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // parses and validates; InputError on any problem

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // ---- metadata ----
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const GgufValue& get(const std::string& key) const;  // InputError when missing
  // Typed getters: InputError naming file and key when missing or of a non-convertible type.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;
  std::vector<int32_t> get_int_array(const std::string& key) const;

  // ---- tensors (in file order) ----
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const uint8_t* tensor_bytes(const GgufTensorInfo& t) const { return file_->data() + t.offset; }
  // Dequantised f32 copy with the row-major shape(); InputError when the type has no kernel.
  Tensor dequantize(const GgufTensorInfo& t) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace linspec
