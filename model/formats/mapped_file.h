// A read-only memory map of a whole file, so multi-GB weight files are read lazily by the OS instead of copied.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace linspec {

class MappedFile {
 public:
  // Throws InputError naming the path when it cannot be opened (missing, a directory, unreadable).
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace linspec
