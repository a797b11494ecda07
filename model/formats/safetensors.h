// safetensors files and HF model directories (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json). Headers are validated in full when a file is opened.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/formats/mapped_file.h"

namespace linspec {

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;  // as written: F32, F16, BF16, I64, ...
  Shape shape;
  uint64_t offset = 0;  // absolute offset in the file
  uint64_t nbytes = 0;
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit the safetensors library enforces

  explicit SafetensorsFile(const std::string& path);  // InputError naming the file and tensor on any problem
  const std::string& path() const { return file_->path(); }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }  // in data order
  const SafetensorsTensorInfo* find(const std::string& name) const;
  const uint8_t* bytes(const SafetensorsTensorInfo& t) const { return file_->data() + t.offset; }
  const nlohmann::json& metadata() const { return metadata_; }
  // Copy converted to `dtype` (F32 or BF16); InputError when the stored dtype is not F32, F16 or BF16.
  Tensor load(const SafetensorsTensorInfo& t, DType dtype) const;

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  nlohmann::json metadata_;
};

// Element size of a safetensors dtype name, 0 when unknown.
size_t safetensors_dtype_size(const std::string& dtype);

// The weight files of an HF directory: model.safetensors, or the shards named by model.safetensors.index.json.
// Every tensor appears exactly once; InputError when a file is missing or a shard disagrees with the index.
struct HfWeights {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, std::pair<const SafetensorsFile*, const SafetensorsTensorInfo*>> tensors;  // by HF name
};
HfWeights open_hf_weights(const std::string& dir);

// The whole model of an HF directory with tensors stored in `dtype` (F32 or BF16).
Checkpoint load_hf_model(const std::string& dir, DType dtype = DType::F32);

}  // namespace linspec
