#include "model/hdf5_util.h"

#include <cstring>
#include <vector>

#include "core/error.h"

namespace linspec::h5 {

void quiet_errors() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

std::string file_name(hid_t obj) {
  ssize_t n = H5Fget_name(obj, nullptr, 0);
  if (n <= 0) return "<hdf5>";
  std::string s(static_cast<size_t>(n) + 1, '\0');
  H5Fget_name(obj, s.data(), s.size());
  s.resize(static_cast<size_t>(n));
  return s;
}

std::string object_path(hid_t obj) {
  ssize_t n = H5Iget_name(obj, nullptr, 0);
  if (n <= 0) return "?";
  std::string s(static_cast<size_t>(n) + 1, '\0');
  H5Iget_name(obj, s.data(), s.size());
  s.resize(static_cast<size_t>(n));
  return s;
}

bool has_link(hid_t parent, const std::string& name) {
  // H5Lexists fails (rather than returning false) when an intermediate group is missing: check each prefix.
  size_t pos = 0;
  while (true) {
    size_t slash = name.find('/', pos);
    std::string prefix = name.substr(0, slash);
    if (!prefix.empty() && H5Lexists(parent, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

Handle open_group(hid_t parent, const std::string& name) {
  if (!has_link(parent, name)) throw_input_error(file_name(parent), ": missing group '", name, "'");
  hid_t g = H5Gopen2(parent, name.c_str(), H5P_DEFAULT);
  if (g < 0) throw_input_error(file_name(parent), ": '", name, "' is not a group");
  return Handle(g, H5Gclose);
}

Handle create_group(hid_t parent, const std::string& name) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  hid_t g = H5Gcreate2(parent, name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) throw_input_error(file_name(parent), ": cannot create group '", name, "'");
  return Handle(g, H5Gclose);
}

Handle open_dataset(hid_t parent, const std::string& name) {
  if (!has_link(parent, name))
    throw_input_error(file_name(parent), ": missing dataset '", object_path(parent), "/", name, "'");
  hid_t d = H5Dopen2(parent, name.c_str(), H5P_DEFAULT);
  if (d < 0) throw_input_error(file_name(parent), ": '", object_path(parent), "/", name, "' is not a dataset");
  return Handle(d, H5Dclose);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

namespace {
Handle scalar_space() { return Handle(H5Screate(H5S_SCALAR), H5Sclose); }

void write_attr(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type, const void* value) {
  if (has_attr(obj, name)) H5Adelete(obj, name.c_str());
  Handle space = scalar_space();
  Handle a(H5Acreate2(obj, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a.valid() || H5Awrite(a.get(), mem_type, value) < 0)
    throw_input_error(file_name(obj), ": cannot write attribute '", name, "' on '", object_path(obj), "'");
}

Handle open_attr(hid_t obj, const std::string& name) {
  if (!has_attr(obj, name))
    throw_input_error(file_name(obj), ": '", object_path(obj), "' has no attribute '", name, "'");
  return Handle(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
}

[[noreturn]] void bad_attr(hid_t obj, const std::string& name, const char* want) {
  throw_input_error(file_name(obj), ": attribute '", name, "' on '", object_path(obj), "' is not ", want);
}

template <typename T>
T read_number_attr(hid_t obj, const std::string& name, hid_t mem_type) {
  Handle a = open_attr(obj, name);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1)
    bad_attr(obj, name, "a scalar integer");
  T v{};
  if (H5Aread(a.get(), mem_type, &v) < 0) bad_attr(obj, name, "readable as an integer");
  return v;
}
}  // namespace

void write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_attr(obj, name, type.get(), type.get(), &p);
}

void write_int_attr(hid_t obj, const std::string& name, int64_t value) {
  write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void write_u64_attr(hid_t obj, const std::string& name, uint64_t value) {
  write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

std::string read_string_attr(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1)
    bad_attr(obj, name, "a scalar string");
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* p = nullptr;
    if (H5Aread(a.get(), mem.get(), &p) < 0) bad_attr(obj, name, "a readable string");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t n = H5Tget_size(type.get());
  H5Tset_size(mem.get(), n);
  std::vector<char> buf(n + 1, '\0');
  if (H5Aread(a.get(), mem.get(), buf.data()) < 0) bad_attr(obj, name, "a readable string");
  return std::string(buf.data(), strnlen(buf.data(), n));
}

int64_t read_int_attr(hid_t obj, const std::string& name) {
  return read_number_attr<int64_t>(obj, name, H5T_NATIVE_INT64);
}

uint64_t read_u64_attr(hid_t obj, const std::string& name) {
  return read_number_attr<uint64_t>(obj, name, H5T_NATIVE_UINT64);
}

}  // namespace linspec::h5
