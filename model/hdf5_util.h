// Small RAII and attribute helpers over the HDF5 C API, shared by checkpoint and snapshot code.
// Every failure that can come from a bad file is an InputError naming the file and the object.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace linspec::h5 {

// Silences HDF5's own error printing (we report errors ourselves); idempotent.
void quiet_errors();

// Owns one hid_t and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// The file name an object belongs to (for messages).
std::string file_name(hid_t obj);
// The size in bytes of the file an object belongs to (0 when unknown).
uint64_t file_bytes(hid_t obj);

bool has_link(hid_t parent, const std::string& name);  // also checks intermediate groups of a path
Handle open_group(hid_t parent, const std::string& name);    // InputError when missing
Handle create_group(hid_t parent, const std::string& name);  // creates intermediate groups
Handle open_dataset(hid_t parent, const std::string& name);  // InputError when missing

bool has_attr(hid_t obj, const std::string& name);
void write_string_attr(hid_t obj, const std::string& name, const std::string& value);
void write_int_attr(hid_t obj, const std::string& name, int64_t value);
void write_u64_attr(hid_t obj, const std::string& name, uint64_t value);
// Readers throw InputError naming file, object path and attribute when it is missing or of another type.
std::string read_string_attr(hid_t obj, const std::string& name);
int64_t read_int_attr(hid_t obj, const std::string& name);
uint64_t read_u64_attr(hid_t obj, const std::string& name);

// String attributes with a checksum: the xxh64 (seed 0) of the value is stored beside it in "<name>_xxh64", so a
// changed byte (one digit of rope_theta in /config model) is refused like a corrupt tensor.
enum class Checksum { IfPresent, Required };  // IfPresent: files written before the checksum existed still load
void write_checked_string_attr(hid_t obj, const std::string& name, const std::string& value);
// InputError naming file, object and attribute on a mismatch (or, when Required, a missing checksum).
std::string read_checked_string_attr(hid_t obj, const std::string& name, Checksum mode);

// The root attribute format_version of a `kind` file ("checkpoint", "token shard file"), an integer or a string of
// digits, checked against the newest version this build reads: InputError naming the file when it is missing,
// malformed, or newer ("written by a newer linspec").
int64_t read_format_version(hid_t file, int64_t supported, const std::string& kind);

// Full path of an object inside its file ("/model/norm.weight").
std::string object_path(hid_t obj);

// Identity of an object in its file (file number + address or token): equal for every link that reaches it, so
// group traversals can detect hard and soft link cycles.
std::string object_identity(hid_t obj);

// The dims of a dataset's dataspace (empty for a scalar).
std::vector<uint64_t> dataset_dims(hid_t dataset);

// The bytes a dataset occupies in memory at `elem_bytes` per element, checked (core/size_limits.h rule) against
// what it stores in the file before anyone allocates them: contiguous and compact storage must hold exactly those
// bytes; chunked storage must have every chunk written and expand by at most deflate's 1032:1; data in other
// files (external storage, virtual datasets) is refused; and the stored bytes must fit in the file. InputError
// naming `file` and `what` otherwise.
uint64_t checked_dataset_bytes(hid_t dataset, uint64_t elem_bytes, const std::string& file, const std::string& what);

}  // namespace linspec::h5
