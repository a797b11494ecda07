// Reading small input files (HF config.json, tokenizer files, JSON indexes) whole, with the checks every input
// file gets: a missing path, a directory where a file belongs, an unreadable file or one above the size cap is an
// InputError naming the path (exit 2), never a confusing parse error or an unbounded read.
#pragma once
#include <cstdint>
#include <string>

namespace linspec {

constexpr uint64_t kMaxSmallFileBytes = uint64_t{1} << 30;

// `what` says what the file should be ("the model config") for the messages.
std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes = kMaxSmallFileBytes);

}  // namespace linspec
