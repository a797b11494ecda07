#include "fuzz/fuzz_support.h"

#include <hdf5.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/error.h"
#include "data/tokenizer.h"
#include "model/hdf5_util.h"

// HDF5 1.10 leaks metadata-cache entries (H5FL allocations under H5O_protect / H5C_protect) when an object header
// in a corrupt file fails to decode; the allocation is the library's, not ours, and a process that hits it is about
// to exit with an error. LeakSanitizer ignores leaks whose stack is in libhdf5; our own HDF5 handles are checked by
// check_no_open_hdf5_objects instead.
extern "C" const char* __lsan_default_suppressions() { return "leak:libhdf5_serial.so\n"; }

namespace linspec::fuzz {

MemoryFile::MemoryFile(const uint8_t* data, size_t size) {
  fd_ = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("memfd_create failed");
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd_, data + done, size - done);
    if (n <= 0) throw std::runtime_error("write to memfd failed");
    done += static_cast<size_t>(n);
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemoryFile::~MemoryFile() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
struct ScratchDir {
  std::string path;
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/linspec-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed: " + tmpl);
    path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

const std::string& scratch_dir() {
  static ScratchDir dir;
  return dir.path;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("cannot write " + path);
}

int64_t open_hdf5_image(const uint8_t* data, size_t size, const char* name) {
  h5::quiet_errors();
  if (size == 0) return -1;  // H5Pset_file_image refuses an empty image; an empty file is not HDF5 either
  h5::Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // backing_store=false: nothing is ever written to `name`; the image is copied, so `data` may go away.
  if (H5Pset_fapl_core(fapl.get(), 64 * 1024, false) < 0) return -1;
  if (H5Pset_file_image(fapl.get(), const_cast<uint8_t*>(data), size) < 0) return -1;
  return H5Fopen(name, H5F_ACC_RDONLY, fapl.get());
}

void check_no_open_hdf5_objects() {
  const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open != 0) {
    std::fprintf(stderr, "fuzz: %zd HDF5 object(s) left open after the input was processed\n", open);
    std::abort();
  }
}

void expect_input_errors_only(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError&) {
  }
}

void exercise_tokenizer(const TokenizerData& data, const std::string& where) {
  const auto tok = make_tokenizer(data, where);
  const auto ids = tok->encode("Hello, world! <|endoftext|> <s> caf\xc3\xa9 \xe2\x96\x81 12345\n\tthe end");
  tok->decode(ids);
}

}  // namespace linspec::fuzz
