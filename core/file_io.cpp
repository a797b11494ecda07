#include "core/file_io.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace linspec {

std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw_input_error(path, ": no such file (", what, ")");
  if (fs::is_directory(st)) throw_input_error(path, ": is a directory, not a file (", what, ")");
  const uint64_t size = fs::is_regular_file(st) ? fs::file_size(path, ec) : 0;
  if (size > max_bytes)
    throw_input_error(path, ": ", size, " bytes, more than the ", max_bytes, " bytes ", what, " may have");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error(path, ": cannot open (", what, ")");
  std::string text;
  text.resize(static_cast<size_t>(size));
  if (size > 0 && !in.read(text.data(), static_cast<std::streamsize>(size)))
    throw_input_error(path, ": cannot read (", what, ")");
  return text;
}

}  // namespace linspec
