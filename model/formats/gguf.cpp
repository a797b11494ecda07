#include "model/formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/size_limits.h"

namespace linspec {

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: return "uint8";
    case GgufValueType::INT8: return "int8";
    case GgufValueType::UINT16: return "uint16";
    case GgufValueType::INT16: return "int16";
    case GgufValueType::UINT32: return "uint32";
    case GgufValueType::INT32: return "int32";
    case GgufValueType::FLOAT32: return "float32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "string";
    case GgufValueType::ARRAY: return "array";
    case GgufValueType::UINT64: return "uint64";
    case GgufValueType::INT64: return "int64";
    case GgufValueType::FLOAT64: return "float64";
  }
  return "?";
}

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr size_t kMaxTensorName = 256;

// Bounds-checked little-endian reader over the mapped header; `what` names the field for error messages.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw_input_error(path_, ": truncated: ", what, " needs ", n, " bytes at offset ", pos_, " but only ",
                        remaining(), " remain");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t len = read<uint64_t>(what + " (string length)");
    if (len > GgufLimits::kMaxStringBytes)
      throw_input_error(path_, ": ", what, ": string length ", len, " exceeds the limit of ",
                        GgufLimits::kMaxStringBytes, " bytes");
    need(len, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

// Smallest encoding of one element, used to reject array counts the file cannot possibly hold before allocating.
uint64_t min_encoded_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

GgufValue read_value(Cursor& c, GgufValueType type, int depth, const std::string& what, const std::string& path) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::UINT8: v.value = uint64_t{c.read<uint8_t>(what)}; break;
    case GgufValueType::INT8: v.value = int64_t{c.read<int8_t>(what)}; break;
    case GgufValueType::UINT16: v.value = uint64_t{c.read<uint16_t>(what)}; break;
    case GgufValueType::INT16: v.value = int64_t{c.read<int16_t>(what)}; break;
    case GgufValueType::UINT32: v.value = uint64_t{c.read<uint32_t>(what)}; break;
    case GgufValueType::INT32: v.value = int64_t{c.read<int32_t>(what)}; break;
    case GgufValueType::UINT64: v.value = c.read<uint64_t>(what); break;
    case GgufValueType::INT64: v.value = c.read<int64_t>(what); break;
    case GgufValueType::FLOAT32: v.value = double{c.read<float>(what)}; break;
    case GgufValueType::FLOAT64: v.value = c.read<double>(what); break;
    case GgufValueType::BOOL: {
      uint8_t b = c.read<uint8_t>(what);
      if (b > 1) throw_input_error(path, ": ", what, ": bool value ", int{b}, " is neither 0 nor 1");
      v.value = b == 1;
      break;
    }
    case GgufValueType::STRING: v.value = c.read_string(what); break;
    case GgufValueType::ARRAY: {
      if (depth >= GgufLimits::kMaxArrayNesting) throw_input_error(path, ": ", what, ": arrays nested too deeply");
      const uint32_t et = c.read<uint32_t>(what + " (array element type)");
      if (!valid_value_type(et)) throw_input_error(path, ": ", what, ": unknown array element type ", et);
      v.elem_type = static_cast<GgufValueType>(et);
      const uint64_t n = c.read<uint64_t>(what + " (array length)");
      if (n > GgufLimits::kMaxArrayElements)
        throw_input_error(path, ": ", what, ": array length ", n, " exceeds the limit of ",
                          GgufLimits::kMaxArrayElements);
      size_limits::check_in_file(n, min_encoded_size(v.elem_type), c.remaining(), path, what + " (array length)");
      std::vector<GgufValue> items;
      items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, v.elem_type, depth + 1, what, path));
      v.value = std::move(items);
      break;
    }
  }
  return v;
}

// a * b for non-negative values, or an InputError when the product leaves int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& path, const std::string& what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw_input_error(path, ": ", what, ": size overflows 64 bits");
  return r;
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  Cursor c(file_->data(), file_->size(), path);
  if (c.read<uint32_t>("magic") != kMagic) throw_input_error(path, ": not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    throw_input_error(path, ": GGUF version ", version_, " is not supported (2 or 3; big-endian files are not)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > GgufLimits::kMaxTensors)
    throw_input_error(path, ": tensor count ", n_tensors, " exceeds the limit of ", GgufLimits::kMaxTensors);
  if (n_kv > GgufLimits::kMaxKeys)
    throw_input_error(path, ": metadata count ", n_kv, " exceeds the limit of ", GgufLimits::kMaxKeys);

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key #" + std::to_string(i));
    const std::string what = "metadata key '" + key + "'";
    const uint32_t type = c.read<uint32_t>(what + " (value type)");
    if (!valid_value_type(type)) throw_input_error(path, ": ", what, ": unknown value type ", type);
    GgufValue v = read_value(c, static_cast<GgufValueType>(type), 0, what, path);
    if (!kv_.emplace(key, std::move(v)).second) throw_input_error(path, ": duplicate ", what);
  }
  if (has("general.alignment")) {
    const int64_t a = get_int("general.alignment");
    if (a <= 0 || (a & (a - 1)) != 0 || a > (1 << 20))
      throw_input_error(path, ": metadata key 'general.alignment': ", a, " is not a power of two (up to 1 MiB)");
    alignment_ = static_cast<uint64_t>(a);
  }

  // Each tensor info takes at least 33 bytes (name length + a 1-byte name, n_dims, one dimension, type, offset):
  // checked before the reserve, so a 100-byte file cannot make it allocate 2^20 infos (~100 MB).
  size_limits::check_in_file(n_tensors, 33, c.remaining(), path, "tensor count");
  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string("name of tensor #" + std::to_string(i));
    const std::string what = "tensor '" + t.name + "'";
    if (t.name.empty() || t.name.size() > kMaxTensorName)
      throw_input_error(path, ": tensor #", i, ": name length ", t.name.size(), " outside 1..", kMaxTensorName);
    const uint32_t n_dims = c.read<uint32_t>(what + " (dimension count)");
    if (n_dims < 1 || n_dims > GgufLimits::kMaxDims)
      throw_input_error(path, ": ", what, ": ", n_dims, " dimensions (expected 1..", GgufLimits::kMaxDims, ")");
    t.numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>(what + " (dimension)");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw_input_error(path, ": ", what, ": dimension ", d, " has invalid size ", ne);
      t.ne.push_back(static_cast<int64_t>(ne));
      t.numel = checked_mul(t.numel, static_cast<int64_t>(ne), path, what);
    }
    const uint32_t type_id = c.read<uint32_t>(what + " (type)");
    auto info = ggml::type_info(type_id);
    if (!info) throw_input_error(path, ": ", what, ": unknown ggml type id ", type_id);
    t.type = *info;
    if (t.ne[0] % t.type.block_size != 0)
      throw_input_error(path, ": ", what, ": row length ", t.ne[0], " is not a multiple of the ", t.type.name,
                        " block size ", t.type.block_size);
    t.nbytes = static_cast<uint64_t>(checked_mul(t.numel / t.type.block_size, t.type.block_bytes, path, what));
    t.offset = c.read<uint64_t>(what + " (offset)");  // relative for now
    if (t.offset % alignment_ != 0)
      throw_input_error(path, ": ", what, ": data offset ", t.offset, " is not aligned to ", alignment_);
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      throw_input_error(path, ": duplicate tensor name '", t.name, "'");
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next aligned offset after the header.
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  uint64_t prev_end = 0;
  std::string prev_name;
  for (auto& t : tensors_) {
    const std::string what = "tensor '" + t.name + "'";
    if (t.offset < prev_end)
      throw_input_error(path, ": ", what, ": data at relative offset ", t.offset, " overlaps or precedes tensor '",
                        prev_name, "' (offsets must be in order)");
    const uint64_t room = file_->size() > data_offset_ ? file_->size() - data_offset_ : 0;
    if (t.offset > room || t.nbytes > room - t.offset)
      throw_input_error(path, ": ", what, ": data [", t.offset, ", ", t.offset + t.nbytes,
                        ") relative to the data section runs past the end of the file (truncated?)");
    prev_end = t.offset + t.nbytes;
    prev_name = t.name;
    t.offset += data_offset_;
  }
}

const GgufValue& GgufFile::get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) throw_input_error(path(), ": missing metadata key '", key, "'");
  return it->second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& v, const char* want) {
  throw_input_error(path, ": metadata key '", key, "': expected ", want, ", found ", gguf_value_type_name(v.type));
}

bool as_int(const GgufValue& v, int64_t& out) {
  if (auto* u = std::get_if<uint64_t>(&v.value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(*u);
    return true;
  }
  if (auto* s = std::get_if<int64_t>(&v.value)) {
    out = *s;
    return true;
  }
  return false;
}
}  // namespace

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = get(key);
  int64_t out;
  if (!as_int(v, out)) wrong_type(path(), key, v, "an integer (fitting int64)");
  return out;
}
int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = get(key);
  if (auto* d = std::get_if<double>(&v.value)) return *d;
  int64_t i;
  if (as_int(v, i)) return static_cast<double>(i);
  wrong_type(path(), key, v, "a number");
}
double GgufFile::get_float(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const GgufValue& v = get(key);
  if (auto* b = std::get_if<bool>(&v.value)) return *b;
  wrong_type(path(), key, v, "a bool");
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = get(key);
  if (auto* s = std::get_if<std::string>(&v.value)) return *s;
  wrong_type(path(), key, v, "a string");
}
std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY || v.elem_type != GgufValueType::STRING) wrong_type(path(), key, v, "an array of strings");
  std::vector<std::string> out;
  for (const auto& e : std::get<std::vector<GgufValue>>(v.value)) out.push_back(std::get<std::string>(e.value));
  return out;
}

std::vector<float> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY || (v.elem_type != GgufValueType::FLOAT32 && v.elem_type != GgufValueType::FLOAT64))
    wrong_type(path(), key, v, "an array of floats");
  std::vector<float> out;
  for (const auto& e : std::get<std::vector<GgufValue>>(v.value)) out.push_back(static_cast<float>(std::get<double>(e.value)));
  return out;
}

std::vector<int32_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY) wrong_type(path(), key, v, "an array of integers");
  std::vector<int32_t> out;
  for (const auto& e : std::get<std::vector<GgufValue>>(v.value)) {
    int64_t i;
    if (!as_int(e, i) || i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max())
      throw_input_error(path(), ": metadata key '", key, "': expected an array of int32 values");
    out.push_back(static_cast<int32_t>(i));
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Tensor GgufFile::dequantize(const GgufTensorInfo& t) const {
  if (!t.type.dequantizable)
    throw_input_error(path(), ": tensor '", t.name, "' has ggml type ", t.type.name,
                      ", which linspec cannot dequantize (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL "
                      "Q2_K Q3_K Q4_K Q5_K Q6_K)");
  Tensor out = Tensor::empty(t.shape(), DType::F32);
  ggml::dequantize(t.type.type, tensor_bytes(t), out.data<float>(), t.numel);
  return out;
}

}  // namespace linspec
