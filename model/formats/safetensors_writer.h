// Writes a safetensors file (the format SafetensorsFile reads): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded with spaces to 8 bytes, then the tensors'
// raw little-endian bytes in header order.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace linspec {

// Tensors must be CPU f32, bf16 or f16 (stored as F32, BF16, F16). `metadata` becomes "__metadata__" (string
// values only, as the format requires). The file is flushed and fsynced; callers that need atomicity write it
// inside a temporary directory or under a temporary name. InputError naming `path` when writing fails.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes the pieces one after another to `path` (truncating it), then flushes and fsyncs it; InputError naming
// `path` on failure. (The byte writer under write_safetensors, also used for an HF directory's JSON files.)
void write_file_synced(const std::string& path, const std::vector<std::string_view>& pieces);

}  // namespace linspec
