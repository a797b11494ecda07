// Shared pieces of the fuzz targets: inputs as files without touching the disk, and the one rule every target
// checks — bad input is an InputError (exit 2 with a message), anything else that escapes is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace linspec::fuzz {

// The bytes in an anonymous memory file (memfd), reachable by path as /proc/self/fd/<n>, so the library's
// path-taking entry points (MappedFile, read_input_file) run unchanged and nothing is left on disk.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size);
  ~MemoryFile();
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// A directory private to this process (under $TMPDIR, else /tmp), removed at exit: for entry points that take an
// HF model directory rather than a file.
const std::string& scratch_dir();
void write_file(const std::string& path, const uint8_t* data, size_t size);

// An HDF5 file image opened read-only in memory (core driver + H5Pset_file_image: no temporary file); -1 when
// HDF5 does not accept the bytes (the same outcome as H5Fopen failing on a file). `name` is the name HDF5 reports.
int64_t open_hdf5_image(const uint8_t* data, size_t size, const char* name);

// Aborts (a fuzz finding) when any HDF5 object is still open: after the file handle is closed, an id left open is a
// handle the library leaked on some path (HDF5's own atexit cleanup would hide it from LeakSanitizer).
void check_no_open_hdf5_objects();

// Runs f; an InputError is the expected answer to bad input and is swallowed. Every other exception propagates,
// so libFuzzer reports it (as an uncaught exception) and the replay driver fails.
void expect_input_errors_only(const std::function<void()>& f);

}  // namespace linspec::fuzz

namespace linspec {
struct TokenizerData;
}
namespace linspec::fuzz {
// What `linspec prepare` does with a loaded tokenizer: build it, encode a fixed text with special tokens, decode.
void exercise_tokenizer(const TokenizerData& data, const std::string& where);
}  // namespace linspec::fuzz
