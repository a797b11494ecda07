#include "model/formats/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/size_limits.h"
#include "model/config.h"
#include "model/formats/hf_tokenizer.h"
#include "model/llama_tensors.h"

namespace linspec {

using nlohmann::json;
namespace fs = std::filesystem;

size_t safetensors_dtype_size(const std::string& d) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

namespace {

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t json_u64(const json& v, const std::string& path, const std::string& what) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    throw_input_error(path, ": ", what, ": expected a non-negative integer, got ", v.dump());
  return v.get<uint64_t>();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  const uint64_t size = file_->size();
  if (size < 8) throw_input_error(path, ": truncated: a safetensors file starts with an 8-byte header length");
  const uint64_t header_len = read_u64_le(file_->data());
  if (header_len > kMaxHeaderBytes)
    throw_input_error(path, ": header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (header_len > size - 8)
    throw_input_error(path, ": truncated: header of ", header_len, " bytes but the file has ", size, " bytes");
  const char* hbegin = reinterpret_cast<const char*>(file_->data() + 8);

  // Top-level keys must be unique; nlohmann would silently keep the last one.
  std::set<std::string> seen;
  std::string duplicate;
  auto check_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header = json::parse(hbegin, hbegin + header_len, check_keys, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    throw_input_error(path, ": header is not a valid JSON object");
  if (!duplicate.empty()) throw_input_error(path, ": duplicate tensor name '", duplicate, "' in the header");

  const uint64_t data_start = 8 + header_len, data_size = size - data_start;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw_input_error(path, ": '__metadata__' must be an object");
      // The format (and the safetensors library) types it as string -> string.
      for (const auto& [key, value] : entry.items())
        if (!value.is_string()) throw_input_error(path, ": '__metadata__' entry '", key, "' is not a string");
      metadata_ = entry;
      continue;
    }
    const std::string what = "tensor '" + name + "'";
    if (!entry.is_object()) throw_input_error(path, ": ", what, ": header entry is not an object");
    SafetensorsTensorInfo t;
    t.name = name;
    if (!entry.contains("dtype") || !entry["dtype"].is_string())
      throw_input_error(path, ": ", what, ": missing 'dtype'");
    t.dtype = entry["dtype"].get<std::string>();
    const size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) throw_input_error(path, ": ", what, ": unknown dtype '", t.dtype, "'");
    if (!entry.contains("shape") || !entry["shape"].is_array()) throw_input_error(path, ": ", what, ": missing 'shape'");
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      const uint64_t dim = json_u64(d, path, what + " shape");
      if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
        throw_input_error(path, ": ", what, ": shape ", entry["shape"].dump(), " overflows 64 bits");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, esize, &nbytes) || numel > static_cast<uint64_t>(INT64_MAX))
      throw_input_error(path, ": ", what, ": shape ", entry["shape"].dump(), " overflows 64 bits");
    const json& offs = entry.contains("data_offsets") ? entry["data_offsets"] : json();
    if (!offs.is_array() || offs.size() != 2) throw_input_error(path, ": ", what, ": 'data_offsets' must be [begin, end]");
    const uint64_t begin = json_u64(offs[0], path, what + " data_offsets"), end = json_u64(offs[1], path, what + " data_offsets");
    if (end < begin) throw_input_error(path, ": ", what, ": data_offsets end ", end, " < begin ", begin);
    if (end - begin != nbytes)
      throw_input_error(path, ": ", what, ": ", end - begin, " data bytes for dtype ", t.dtype, " and shape ",
                        entry["shape"].dump(), " (", nbytes, " expected)");
    if (end > data_size)
      throw_input_error(path, ": ", what, ": data_offsets [", begin, ", ", end, ") run past the end of the file (",
                        data_size, " data bytes; truncated?)");
    t.offset = data_start + begin;
    t.nbytes = nbytes;
    tensors_.push_back(std::move(t));
  }
  // The data buffer must be covered exactly: no overlaps, no holes, nothing after the last tensor.
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  uint64_t expect = data_start;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const auto& t = tensors_[i];
    if (t.offset < expect)
      throw_input_error(path, ": tensor '", t.name, "': data overlaps tensor '", tensors_[i - 1].name, "'");
    if (t.offset > expect)
      throw_input_error(path, ": tensor '", t.name, "': ", t.offset - expect, " unused bytes before its data (hole)");
    expect = t.offset + t.nbytes;
    index_.emplace(t.name, i);
  }
  if (expect != size)
    throw_input_error(path, ": ", size - expect, " bytes after the last tensor's data are not described by the header");
}

const SafetensorsTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor SafetensorsFile::load(const SafetensorsTensorInfo& t, DType dtype) const {
  DType src;
  if (t.dtype == "F32") src = DType::F32;
  else if (t.dtype == "F16") src = DType::F16;
  else if (t.dtype == "BF16") src = DType::BF16;
  else
    throw_input_error(path(), ": tensor '", t.name, "' has dtype ", t.dtype, " (model weights must be F32, F16 or BF16)");
  Tensor out = Tensor::empty(t.shape, dtype);
  if (src == dtype) {
    std::memcpy(out.raw_data(), bytes(t), t.nbytes);
    return out;
  }
  // The conversion kernels read typed elements: data at an offset that is not a multiple of the element size (the
  // header length need not be a multiple of 8) goes through an aligned copy first (UBSan: misaligned load).
  const size_t elem = dtype_size(src);
  if (reinterpret_cast<uintptr_t>(bytes(t)) % elem != 0) {
    Tensor aligned = Tensor::empty(t.shape, src);
    std::memcpy(aligned.raw_data(), bytes(t), t.nbytes);
    convert_floats(aligned.raw_data(), src, out.raw_data(), dtype, static_cast<size_t>(out.numel()));
  } else {
    convert_floats(bytes(t), src, out.raw_data(), dtype, static_cast<size_t>(out.numel()));
  }
  return out;
}

HfWeights open_hf_weights(const std::string& dir) {
  HfWeights w;
  const fs::path root(dir);
  const fs::path index_path = root / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file
  if (fs::exists(index_path)) {
    const std::string ip = index_path.string();
    json index = json::parse(read_input_file(ip, "the safetensors index"), nullptr, false);
    if (index.is_discarded() || !index.is_object()) throw_input_error(ip, ": not valid JSON");
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) throw_input_error(ip, ": missing key 'weight_map'");
    for (auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) throw_input_error(ip, ": weight_map entry '", name, "' is not a file name");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        throw_input_error(ip, ": weight_map entry '", name, "': '", f, "' is not a file in the model directory");
      weight_map[name] = f;
    }
  } else if (fs::exists(root / "model.safetensors")) {
    // Single file: everything it holds.
  } else {
    throw_input_error(dir, ": no model.safetensors or model.safetensors.index.json (only safetensors weights are "
                      "supported; pytorch_model.bin is not)");
  }
  std::set<std::string> shard_names;
  for (const auto& [name, f] : weight_map) shard_names.insert(f);
  if (weight_map.empty()) shard_names.insert("model.safetensors");
  for (const auto& shard : shard_names) {
    const std::string p = (root / shard).string();
    if (!fs::exists(p)) throw_input_error(p, ": missing (listed in model.safetensors.index.json)");
    w.files.push_back(std::make_unique<SafetensorsFile>(p));
    const SafetensorsFile* file = w.files.back().get();
    for (const auto& t : file->tensors()) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->second != shard) continue;  // the index names another shard
      }
      if (!w.tensors.emplace(t.name, std::make_pair(file, &t)).second)
        throw_input_error(p, ": tensor '", t.name, "' appears in more than one shard");
    }
  }
  for (const auto& [name, shard] : weight_map)
    if (!w.tensors.count(name))
      throw_input_error((root / shard).string(), ": tensor '", name, "' listed in the index is not in this shard");
  return w;
}

namespace {
// Tensors of the HF directory that are not model parameters.
bool skipped_hf_tensor(const std::string& name, const ModelConfig& c) {
  return name.find("rotary_emb.inv_freq") != std::string::npos ||  // a buffer older HF versions saved
         (name == "lm_head.weight" && c.tie_word_embeddings);      // HF ties it to the embedding anyway
}

// Every shape against the config and the whole load against memory, before the first tensor is converted.
void check_hf_tensors(const HfWeights& weights, const ModelConfig& c, DType dtype, const std::string& dir) {
  const auto expected = llama_tensor_shapes(c);
  size_limits::LoadBudget budget(dir);
  for (const auto& [hf_name, loc] : weights.tensors) {
    const std::string name = linspec_tensor_name(hf_name);
    if (skipped_hf_tensor(name, c)) continue;
    check_llama_tensor_shape(expected, c, name, loc.second->shape, loc.first->path(), hf_name);
    budget.reserve(static_cast<uint64_t>(shape_numel(loc.second->shape)) * dtype_size(dtype),
                   "tensor '" + hf_name + "'");
  }
}
}  // namespace

Checkpoint load_hf_model(const std::string& dir, DType dtype) {
  LINSPEC_CHECK(dtype == DType::F32 || dtype == DType::BF16, "load_hf_model: f32 or bf16");
  if (!fs::is_directory(dir)) throw_input_error(dir, ": not a directory");
  Checkpoint ck;
  ck.config = model_config_from_hf_file((fs::path(dir) / "config.json").string());
  HfWeights weights = open_hf_weights(dir);
  check_hf_tensors(weights, ck.config, dtype, dir);
  for (const auto& [hf_name, loc] : weights.tensors) {
    const std::string name = linspec_tensor_name(hf_name);
    if (skipped_hf_tensor(name, ck.config)) continue;
    Tensor t = loc.first->load(*loc.second, dtype);
    if (!ck.tensors.emplace(name, std::move(t)).second)
      throw_input_error(loc.first->path(), ": tensor '", hf_name, "' maps onto an already loaded name '", name, "'");
  }
  check_llama_tensors(ck.config, ck.tensors, dir);
  ck.tokenizer = load_hf_tokenizer(dir, ck.config);
  ck.extra_attrs["source_format"] = "hf";
  ck.extra_attrs["source"] = dir;
  return ck;
}

}  // namespace linspec
