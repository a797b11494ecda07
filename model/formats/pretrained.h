// Entry points over all model sources: an HF directory, a GGUF file, or a native checkpoint.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"

namespace linspec {

enum class ModelFileKind { HfDirectory, Gguf, Checkpoint };
// By content, not by name: directories are HF, files starting with "GGUF" are GGUF, HDF5 files are checkpoints.
// InputError when the path is missing or none of these.
ModelFileKind detect_model_file(const std::string& path);

// An HF directory or a GGUF file as a Checkpoint (tensors in `dtype`, F32 or BF16), validated against its config.
Checkpoint load_pretrained(const std::string& source, DType dtype = DType::F32);

// `linspec info --json` document: {format, path, config, tensors: [{name, shape, dtype, xxh64}], tokenizer, ...}.
// Checkpoint tensors are named "model/<name>"; GGUF and safetensors tensors keep their names in the file and
// report the stored bytes' xxh64 and dtype.
nlohmann::json describe_model_file(const std::string& path);
// Human-readable summary of the same document.
std::string summarize_model_description(const nlohmann::json& d);

}  // namespace linspec
