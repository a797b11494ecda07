// Small RAII and attribute helpers over the HDF5 C API, shared by checkpoint and snapshot code.
// Every failure that can come from a bad file is an InputError naming the file and the object.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

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

// Full path of an object inside its file ("/model/norm.weight").
std::string object_path(hid_t obj);

}  // namespace linspec::h5
