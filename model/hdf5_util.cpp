#include "model/hdf5_util.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/size_limits.h"

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

uint64_t file_bytes(hid_t obj) {
  Handle f(H5Iget_file_id(obj), H5Fclose);
  hsize_t n = 0;
  if (!f.valid() || H5Fget_filesize(f.get(), &n) < 0) return 0;
  return n;
}

std::string object_identity(hid_t obj) {
  std::string id;
  auto append = [&](const void* p, size_t n) { id.append(static_cast<const char*>(p), n); };
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t info;
  if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0) return "";
  append(&info.fileno, sizeof info.fileno);
  append(&info.token, sizeof info.token);
#else
  H5O_info_t info;
  if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return "";
  append(&info.fileno, sizeof info.fileno);
  append(&info.addr, sizeof info.addr);
#endif
  return id;
}

std::vector<uint64_t> dataset_dims(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return std::vector<uint64_t>(dims.begin(), dims.end());
}

namespace {
// Deflate cannot shrink data by more than ~1032:1; a chunked dataset claiming more is forged.
constexpr uint64_t kMaxCompressionRatio = 1032;

// Chunked storage: every chunk the dims need must be in the file (unwritten chunks read as the fill value, so a
// forged header could otherwise declare any size at no cost in the file).
void check_chunks(hid_t dataset, hid_t dcpl, const std::vector<uint64_t>& dims, const std::string& file,
                  const std::string& what) {
  std::vector<hsize_t> chunk(dims.size());
  if (H5Pget_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()) != static_cast<int>(chunk.size()))
    throw_input_error(file, ": ", what, ": unreadable chunk layout");
  uint64_t needed = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (chunk[i] == 0) throw_input_error(file, ": ", what, ": chunk dimension ", i, " is 0");
    if (__builtin_mul_overflow(needed, (dims[i] + chunk[i] - 1) / chunk[i], &needed))
      throw_input_error(file, ": ", what, ": chunk count overflows 64 bits");
  }
  Handle space(H5Dget_space(dataset), H5Sclose);
  hsize_t stored = 0;
  if (H5Dget_num_chunks(dataset, space.get(), &stored) < 0 || stored != needed)
    throw_input_error(file, ": ", what, ": ", stored, " of the ", needed,
                      " chunks its dimensions need are in the file (forged or damaged dataset)");
}
}  // namespace

uint64_t checked_dataset_bytes(hid_t dataset, uint64_t elem_bytes, const std::string& file, const std::string& what) {
  const std::vector<uint64_t> dims = dataset_dims(dataset);
  const uint64_t bytes = size_limits::array_bytes(dims, elem_bytes, file, what);
  if (bytes == 0) return 0;
  Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (H5Pget_external_count(dcpl.get()) > 0)
    throw_input_error(file, ": ", what, ": data stored in external files is not read");
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  const uint64_t stored = H5Dget_storage_size(dataset);
  const uint64_t file_size = file_bytes(dataset);
  if (stored > file_size)
    throw_input_error(file, ": ", what, ": claims ", stored, " stored bytes but the file has ", file_size);
  Handle type(H5Dget_type(dataset), H5Tclose);
  const uint64_t stored_elem = H5Tget_size(type.get());
  const uint64_t raw = size_limits::array_bytes(dims, stored_elem, file, what);
  if (layout == H5D_CONTIGUOUS || layout == H5D_COMPACT) {
    if (stored != raw)
      throw_input_error(file, ": ", what, ": ", stored, " stored bytes, but its dimensions need ", raw);
  } else if (layout == H5D_CHUNKED) {
    check_chunks(dataset, dcpl.get(), dims, file, what);
    if (raw / kMaxCompressionRatio > stored)
      throw_input_error(file, ": ", what, ": ", raw, " bytes cannot come from ", stored,
                        " compressed bytes (forged dimensions?)");
  } else {
    throw_input_error(file, ": ", what, ": virtual datasets are not read");
  }
  return bytes;
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
  size_limits::check_in_file(n, 1, file_bytes(obj), file_name(obj), "attribute '" + name + "'");
  H5Tset_size(mem.get(), n);
  // NULLPAD in memory: a fixed string that fills its n bytes (h5py's NULLPAD strings) keeps its last character,
  // which a NULLTERM buffer of n bytes would drop for the terminator.
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  std::vector<char> buf(n + 1, '\0');
  if (H5Aread(a.get(), mem.get(), buf.data()) < 0) bad_attr(obj, name, "a readable string");
  return std::string(buf.data(), strnlen(buf.data(), n));
}

namespace {
std::string checksum_attr(const std::string& name) { return name + "_xxh64"; }
}  // namespace

void write_checked_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  write_string_attr(obj, name, value);
  write_u64_attr(obj, checksum_attr(name), XXH64(value.data(), value.size(), 0));
}

std::string read_checked_string_attr(hid_t obj, const std::string& name, Checksum mode) {
  std::string value = read_string_attr(obj, name);
  const std::string sum = checksum_attr(name);
  if (!has_attr(obj, sum) && mode == Checksum::IfPresent) return value;
  if (read_u64_attr(obj, sum) != XXH64(value.data(), value.size(), 0))
    throw_input_error(file_name(obj), ": attribute '", name, "' on '", object_path(obj),
                      "': checksum mismatch (attribute '", sum, "'): the file is corrupt");
  return value;
}

int64_t read_format_version(hid_t file, int64_t supported, const std::string& kind) {
  const std::string where = file_name(file);
  if (!has_attr(file, "format_version"))
    throw_input_error(where, ": ", kind, " without the root attribute 'format_version'");
  Handle a = open_attr(file, "format_version");
  Handle type(H5Aget_type(a.get()), H5Tclose);
  int64_t version = -1;
  if (H5Tget_class(type.get()) == H5T_STRING) {
    const std::string text = read_string_attr(file, "format_version");
    if (!text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string::npos)
      version = std::stoll(text);
  } else {
    version = read_int_attr(file, "format_version");
  }
  if (version < 1) throw_input_error(where, ": root attribute 'format_version' of this ", kind, " is not a version");
  if (version > supported)
    throw_input_error(where, ": ", kind, " format_version ", version, " was written by a newer linspec (this build",
                      " reads versions up to ", supported, "); upgrade linspec to read it");
  return version;
}

int64_t read_int_attr(hid_t obj, const std::string& name) {
  return read_number_attr<int64_t>(obj, name, H5T_NATIVE_INT64);
}

uint64_t read_u64_attr(hid_t obj, const std::string& name) {
  return read_number_attr<uint64_t>(obj, name, H5T_NATIVE_UINT64);
}

}  // namespace linspec::h5
