// Native linspec checkpoint (HDF5), layout per docs/formats.md §2:
//   /                 attrs format="linspec", format_version=1, plus any extra_attrs (strings)
//   /config           attrs model (ModelConfig JSON), yaml (resolved experiment YAML, optional)
//   /model/<name>     one dataset per tensor: f32, or bf16 stored as uint16; attrs dtype ("f32"|"bf16"), xxh64
//   /tokenizer        attr json (TokenizerData without spm_model); dataset spm_model (uint8) when present
// Tensor names are HF names without the leading "model." (see model/llama_tensors.h), e.g.
// /model/layers.0.self_attn.q_proj.weight. Files are written to a temporary name, fsynced and renamed, so a
// checkpoint path either holds a complete file or is untouched.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "model/config.h"
#include "model/tokenizer_data.h"

namespace linspec {

struct Checkpoint {
  ModelConfig config;
  std::map<std::string, Tensor> tensors;  // f32 or bf16, contiguous on load
  TokenizerData tokenizer;
  std::string config_yaml;  // resolved experiment YAML ("" when none)
  std::map<std::string, std::string> extra_attrs;  // root string attributes (source, provenance, ...)
};

constexpr int kCheckpointFormatVersion = 1;

void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// InputError naming the file (and tensor/key) when it is not a linspec checkpoint, misses a group or attribute,
// or a tensor's bytes do not match its xxh64.
Checkpoint load_checkpoint(const std::string& path, bool verify_checksums = true);
// The same from a file already open (load_checkpoint opens `path` and calls it; the fuzz target passes an in-memory
// file image). `path` names the file in errors.
Checkpoint read_checkpoint(int64_t file, const std::string& path, bool verify_checksums = true);

// xxh64 (seed 0) of the tensor's raw bytes in its dtype (contiguous layout).
uint64_t tensor_xxh64(const Tensor& t);
std::string xxh64_hex(uint64_t h);  // 16 lowercase hex digits

// ---- building blocks for other HDF5 writers (snapshots, draft heads, optimizer state) ----
using H5Handle = int64_t;  // an HDF5 hid_t

// Creates `path` + ".tmp.<pid>", runs fill(file) on it, flushes, fsyncs and renames over `path`. On any exception
// the temporary file is removed and `path` is left untouched.
void write_hdf5_atomically(const std::string& path, const std::function<void(H5Handle file)>& fill);
// Writes the checkpoint's groups into an open file (what save_checkpoint puts inside write_hdf5_atomically).
void write_checkpoint_contents(H5Handle file, const Checkpoint& ckpt);

// Writes each tensor (f32, bf16; also f64/i32/i64 kept as they are) as a dataset <group>/<name> with dtype and
// xxh64 attrs; names containing '/' create subgroups.
void write_tensor_group(H5Handle parent, const std::string& group, const std::map<std::string, Tensor>& tensors);
// Reads every dataset below <group> (recursively; names relative to the group). `file_path` names the file in
// errors; checksums are verified when asked.
std::map<std::string, Tensor> read_tensor_group(H5Handle parent, const std::string& group,
                                                const std::string& file_path, bool verify_checksums);

// Listing without reading data: name (relative to group), shape, dtype name and the stored xxh64.
struct StoredTensorInfo {
  std::string name;
  Shape shape;
  std::string dtype;
  uint64_t xxh64 = 0;
};
std::vector<StoredTensorInfo> list_tensor_group(H5Handle parent, const std::string& group, const std::string& file_path);

// Opens an HDF5 file read-only (InputError naming the path when it is missing or not HDF5) and closes it after f.
void with_hdf5_file(const std::string& path, const std::function<void(H5Handle file)>& f);
// True when the HDF5 file at `path` has a link `group` ("draft/heads"); InputError as with_hdf5_file.
bool hdf5_file_has(const std::string& path, const std::string& group);

// A tensor group with a JSON attribute "config" (the drafts under /draft: heads, model, eagle).
struct ConfiguredGroup {
  nlohmann::json config;
  std::map<std::string, Tensor> tensors;
};
// Writes the tensors as write_tensor_group does and the config as a checksummed attribute.
void write_configured_group(H5Handle file, const std::string& group, const std::map<std::string, Tensor>& tensors,
                            const nlohmann::json& config);
// nullopt when the file has no `group`; InputError naming the file and group when its config attribute is missing
// or not JSON, and as read_tensor_group (checksums verified).
std::optional<ConfiguredGroup> read_configured_group(const std::string& path, const std::string& group);

}  // namespace linspec
