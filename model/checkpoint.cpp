#include "model/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/size_limits.h"
#include "core/temp_files.h"
#include "model/hdf5_util.h"

namespace linspec {

static_assert(sizeof(H5Handle) == sizeof(hid_t), "H5Handle must hold an hid_t");
using h5::Handle;

uint64_t tensor_xxh64(const Tensor& t) {
  Tensor c = t.contiguous().to(Device::CPU);  // a model on a GPU is hashed from a host copy
  return XXH64(c.raw_data(), c.nbytes(), 0);
}

std::string xxh64_hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

struct StoredType {
  DType dtype;
  const char* name;
  hid_t file_type;  // resolved at call time (HDF5 type ids are runtime values)
  hid_t mem_type;
};

StoredType stored_type(DType d) {
  switch (d) {
    case DType::F32: return {d, "f32", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
    case DType::F64: return {d, "f64", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
    case DType::BF16: return {d, "bf16", H5T_STD_U16LE, H5T_NATIVE_UINT16};
    case DType::F16: return {d, "f16", H5T_STD_U16LE, H5T_NATIVE_UINT16};
    case DType::I32: return {d, "i32", H5T_STD_I32LE, H5T_NATIVE_INT32};
    case DType::I64: return {d, "i64", H5T_STD_I64LE, H5T_NATIVE_INT64};
    case DType::Q8: break;  // inference-only packed weights are never stored
  }
  LINSPEC_CHECK(false, "unknown dtype");
}

// The dtype attribute names the logical type; the HDF5 storage class must agree with it.
StoredType stored_type_for(const std::string& name, hid_t dataset, const std::string& file, const std::string& what) {
  for (DType d : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64}) {
    StoredType st = stored_type(d);
    if (name != st.name) continue;
    Handle ft(H5Dget_type(dataset), H5Tclose);
    const H5T_class_t want = (d == DType::F32 || d == DType::F64) ? H5T_FLOAT : H5T_INTEGER;
    if (H5Tget_class(ft.get()) != want || H5Tget_size(ft.get()) != dtype_size(d))
      throw_input_error(file, ": tensor '", what, "': stored HDF5 type does not match its dtype '", name, "'");
    return st;
  }
  throw_input_error(file, ": tensor '", what, "': unknown dtype '", name, "'");
}

herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

// The link names of a group, sorted. H5Literate in native order walks the name index as stored; by-index lookups
// (H5Lget_name_by_idx) build and free a table of every link per call, and libhdf5 1.10 frees garbage from that table
// when a link message in a corrupt file fails to decode (a SEGV found by fuzz_checkpoint). A failed walk is an
// InputError naming the group.
std::vector<std::string> link_names(hid_t group, const std::string& file) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(group, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_link_name, &names) < 0)
    throw_input_error(file, ": group '", h5::object_path(group), "': cannot read its links (corrupt file?)");
  std::sort(names.begin(), names.end());
  return names;
}

// Groups below a tensor group deeper than this are refused (real files nest 2 levels: /draft/heads/head0).
constexpr int kMaxGroupDepth = 32;

struct Traversal {
  const std::string& file;
  std::set<std::string> groups;  // object identities of the groups entered so far
};

// Calls f(relative_name, dataset) for every dataset below `group`, depth first in name order. A group reached a
// second time (a hard or soft link back up the tree, or two links to one group) or nested too deep is refused with
// the link's path, so a forged file cannot make the traversal recurse forever; links into other files are refused.
void visit_datasets(hid_t group, const std::string& path, const std::string& prefix, int depth, Traversal& t,
                    const std::function<void(const std::string&, hid_t)>& f) {
  if (depth > kMaxGroupDepth)
    throw_input_error(t.file, ": link '", path, "': groups nested deeper than ", kMaxGroupDepth, " levels");
  if (!t.groups.insert(h5::object_identity(group)).second)
    throw_input_error(t.file, ": link '", path, "' leads to a group already visited (link cycle)");
  for (const auto& name : link_names(group, t.file)) {
    H5L_info_t link;
    if (H5Lget_info(group, name.c_str(), &link, H5P_DEFAULT) < 0 ||
        (link.type != H5L_TYPE_HARD && link.type != H5L_TYPE_SOFT))
      throw_input_error(t.file, ": link '", path, "/", name, "' points outside the file (not read)");
    Handle obj(H5Oopen(group, name.c_str(), H5P_DEFAULT), H5Oclose);
    if (!obj.valid()) continue;  // a dangling soft link: whatever it should name is reported as missing
    const H5I_type_t kind = H5Iget_type(obj.get());
    if (kind == H5I_GROUP)
      visit_datasets(obj.get(), path + "/" + name, prefix + name + "/", depth + 1, t, f);
    else if (kind == H5I_DATASET) f(prefix + name, obj.get());
  }
}

void visit_datasets(hid_t group, const std::string& group_path, const std::string& file,
                    const std::function<void(const std::string&, hid_t)>& f) {
  Traversal t{file, {}};
  visit_datasets(group, "/" + group_path, "", 0, t, f);
}

Shape dataset_shape(hid_t dataset) {
  const std::vector<uint64_t> dims = h5::dataset_dims(dataset);
  return Shape(dims.begin(), dims.end());
}

}  // namespace

void write_tensor_group(H5Handle parent, const std::string& group, const std::map<std::string, Tensor>& tensors) {
  h5::quiet_errors();
  Handle g = h5::has_link(parent, group) ? h5::open_group(parent, group) : h5::create_group(parent, group);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  for (const auto& [name, tensor] : tensors) {
    LINSPEC_CHECK(tensor.defined(), "write_tensor_group: '", name, "' is undefined");
    Tensor t = tensor.contiguous().to(Device::CPU);  // snapshots of a GPU run are written from host copies
    const StoredType st = stored_type(t.dtype());
    std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
    Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle ds(H5Dcreate2(g.get(), name.c_str(), st.file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
    if (!ds.valid()) throw_input_error(h5::file_name(parent), ": cannot create dataset '", group, "/", name, "'");
    if (t.numel() > 0 && H5Dwrite(ds.get(), st.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) < 0)
      throw_input_error(h5::file_name(parent), ": cannot write dataset '", group, "/", name, "'");
    h5::write_string_attr(ds.get(), "dtype", st.name);
    h5::write_u64_attr(ds.get(), "xxh64", XXH64(t.raw_data(), t.nbytes(), 0));
  }
}

std::map<std::string, Tensor> read_tensor_group(H5Handle parent, const std::string& group,
                                                const std::string& file_path, bool verify_checksums) {
  h5::quiet_errors();
  Handle g = h5::open_group(parent, group);
  std::map<std::string, Tensor> out;
  size_limits::LoadBudget budget(file_path);
  visit_datasets(g.get(), group, file_path, [&](const std::string& name, hid_t ds) {
    const std::string what = group + "/" + name;
    if (!h5::has_attr(ds, "dtype")) throw_input_error(file_path, ": tensor '", what, "': missing attribute 'dtype'");
    if (!h5::has_attr(ds, "xxh64")) throw_input_error(file_path, ": tensor '", what, "': missing attribute 'xxh64'");
    const StoredType st = stored_type_for(h5::read_string_attr(ds, "dtype"), ds, file_path, what);
    budget.reserve(h5::checked_dataset_bytes(ds, dtype_size(st.dtype), file_path, "tensor '" + what + "'"),
                   "tensor '" + what + "'");
    const Shape shape = dataset_shape(ds);
    Tensor t = Tensor::empty(shape, st.dtype);
    if (t.numel() > 0 && H5Dread(ds, st.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) < 0)
      throw_input_error(file_path, ": tensor '", what, "': cannot read data");
    if (verify_checksums) {
      const uint64_t stored = h5::read_u64_attr(ds, "xxh64"), actual = XXH64(t.raw_data(), t.nbytes(), 0);
      if (stored != actual)
        throw_input_error(file_path, ": tensor '", what, "': checksum mismatch (stored xxh64 ", xxh64_hex(stored),
                          ", data hashes to ", xxh64_hex(actual), "): the file is corrupt");
    }
    out.emplace(name, std::move(t));
  });
  return out;
}

std::vector<StoredTensorInfo> list_tensor_group(H5Handle parent, const std::string& group, const std::string& file_path) {
  h5::quiet_errors();
  Handle g = h5::open_group(parent, group);
  std::vector<StoredTensorInfo> out;
  visit_datasets(g.get(), group, file_path, [&](const std::string& name, hid_t ds) {
    const std::string what = group + "/" + name;
    StoredTensorInfo info;
    info.name = name;
    info.shape = dataset_shape(ds);
    info.dtype = stored_type_for(h5::read_string_attr(ds, "dtype"), ds, file_path, what).name;
    info.xxh64 = h5::read_u64_attr(ds, "xxh64");
    out.push_back(std::move(info));
  });
  return out;
}

void with_hdf5_file(const std::string& path, const std::function<void(H5Handle)>& f) {
  h5::quiet_errors();
  if (!std::filesystem::is_regular_file(path)) throw_input_error(path, ": no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) throw_input_error(path, ": not an HDF5 file");
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) throw_input_error(path, ": cannot open HDF5 file");
  f(file.get());
}

bool hdf5_file_has(const std::string& path, const std::string& group) {
  bool found = false;
  with_hdf5_file(path, [&](H5Handle file) { found = h5::has_link(file, group); });
  return found;
}

void write_configured_group(H5Handle file, const std::string& group, const std::map<std::string, Tensor>& tensors,
                            const nlohmann::json& config) {
  write_tensor_group(file, group, tensors);
  Handle g = h5::open_group(file, group);
  h5::write_checked_string_attr(g.get(), "config", config.dump());
}

std::optional<ConfiguredGroup> read_configured_group(const std::string& path, const std::string& group) {
  std::optional<ConfiguredGroup> out;
  with_hdf5_file(path, [&](H5Handle file) {
    if (!h5::has_link(file, group)) return;
    Handle g = h5::open_group(file, group);
    if (!h5::has_attr(g.get(), "config")) throw_input_error(path, ": /", group, " has no attribute 'config'");
    auto j = nlohmann::json::parse(h5::read_checked_string_attr(g.get(), "config", h5::Checksum::IfPresent), nullptr,
                                   false);
    if (j.is_discarded()) throw_input_error(path, ": /", group, " attribute 'config' is not valid JSON");
    out = ConfiguredGroup{std::move(j), read_tensor_group(file, group, path, true)};
  });
  return out;
}

void write_hdf5_atomically(const std::string& path, const std::function<void(H5Handle)>& fill) {
  h5::quiet_errors();
  remove_stale_temporaries(path);  // of writers killed before they could clean up
  const std::string tmp = temporary_path(path);
  try {
    {
      Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
      H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);  // dense storage for large attributes
      Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
      if (!file.valid()) throw_input_error(path, ": cannot create file (does the directory exist and is it writable?)");
      fill(file.get());
      errno = 0;
      if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0)
        throw_input_error(path, ": cannot flush file", errno ? std::string(" (") + std::strerror(errno) + ")" : "");
      file.reset();
    }
    int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      throw_input_error(path, ": cannot fsync the written file: ", std::strerror(errno));
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw_input_error(path, ": cannot rename the temporary file into place: ", std::strerror(errno));
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  // Persist the rename itself.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

namespace {
std::string dump_json(const nlohmann::json& j, const std::string& path, const char* what) {
  try {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    throw_input_error(path, ": ", what, " cannot be stored: ", e.what());
  }
}

// Attributes written with a checksum are verified (older checkpoints without one still load).
nlohmann::json parse_json_attr(hid_t obj, const std::string& attr, const std::string& path) {
  nlohmann::json j =
      nlohmann::json::parse(h5::read_checked_string_attr(obj, attr, h5::Checksum::IfPresent), nullptr, false);
  if (j.is_discarded()) throw_input_error(path, ": attribute '", attr, "' on '", h5::object_path(obj), "' is not valid JSON");
  return j;
}
}  // namespace

void write_checkpoint_contents(H5Handle file, const Checkpoint& ck) {
  const std::string path = target_of_temporary(h5::file_name(file));  // messages name the output, not its temporary
  h5::write_string_attr(file, "format", "linspec");
  h5::write_int_attr(file, "format_version", kCheckpointFormatVersion);
  for (const auto& [k, v] : ck.extra_attrs) {
    LINSPEC_CHECK(k != "format" && k != "format_version", "extra attribute '", k, "' is reserved");
    h5::write_string_attr(file, k, v);
  }
  Handle config = h5::create_group(file, "config");
  h5::write_checked_string_attr(config.get(), "model", dump_json(nlohmann::json(ck.config), path, "model config"));
  if (!ck.config_yaml.empty()) h5::write_checked_string_attr(config.get(), "yaml", ck.config_yaml);
  write_tensor_group(file, "model", ck.tensors);
  Handle tok = h5::create_group(file, "tokenizer");
  h5::write_checked_string_attr(tok.get(), "json", dump_json(nlohmann::json(ck.tokenizer), path, "tokenizer"));
  if (!ck.tokenizer.spm_model.empty()) {
    const hsize_t n = ck.tokenizer.spm_model.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Handle ds(H5Dcreate2(tok.get(), "spm_model", H5T_STD_U8LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
    if (!ds.valid() || H5Dwrite(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ck.tokenizer.spm_model.data()) < 0)
      throw_input_error(path, ": cannot write /tokenizer/spm_model");
    h5::write_u64_attr(ds.get(), "xxh64", XXH64(ck.tokenizer.spm_model.data(), n, 0));
  }
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  write_hdf5_atomically(path, [&](H5Handle file) { write_checkpoint_contents(file, ck); });
}

namespace {
herr_t collect_root_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}
}  // namespace

Checkpoint load_checkpoint(const std::string& path, bool verify_checksums) {
  Checkpoint ck;
  with_hdf5_file(path, [&](H5Handle file) { ck = read_checkpoint(file, path, verify_checksums); });
  return ck;
}

Checkpoint read_checkpoint(H5Handle file, const std::string& path, bool verify_checksums) {
  Checkpoint ck;
  if (!h5::has_attr(file, "format") || h5::read_string_attr(file, "format") != "linspec")
    throw_input_error(path, ": not a linspec checkpoint (root attribute 'format' is not \"linspec\")");
  h5::read_format_version(file, kCheckpointFormatVersion, "checkpoint");
  std::vector<std::string> attrs;
  hsize_t idx = 0;
  H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_root_attr, &attrs);
  for (const auto& a : attrs)
    if (a != "format" && a != "format_version") ck.extra_attrs[a] = h5::read_string_attr(file, a);

  Handle config = h5::open_group(file, "config");
  ck.config = model_config_from_json(parse_json_attr(config.get(), "model", path), path + " (/config model)");
  if (h5::has_attr(config.get(), "yaml"))
    ck.config_yaml = h5::read_checked_string_attr(config.get(), "yaml", h5::Checksum::IfPresent);
  ck.tensors = read_tensor_group(file, "model", path, verify_checksums);

  Handle tok = h5::open_group(file, "tokenizer");
  ck.tokenizer = tokenizer_data_from_json(parse_json_attr(tok.get(), "json", path), path + " (/tokenizer json)");
  if (h5::has_link(tok.get(), "spm_model")) {
    Handle ds = h5::open_dataset(tok.get(), "spm_model");
    if (h5::dataset_dims(ds.get()).size() != 1)
      throw_input_error(path, ": /tokenizer/spm_model must be one-dimensional");
    ck.tokenizer.spm_model.resize(h5::checked_dataset_bytes(ds.get(), 1, path, "dataset '/tokenizer/spm_model'"));
    if (H5Dread(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ck.tokenizer.spm_model.data()) < 0)
      throw_input_error(path, ": cannot read /tokenizer/spm_model");
    if (verify_checksums &&
        h5::read_u64_attr(ds.get(), "xxh64") != XXH64(ck.tokenizer.spm_model.data(), ck.tokenizer.spm_model.size(), 0))
      throw_input_error(path, ": /tokenizer/spm_model: checksum mismatch: the file is corrupt");
  }
  ck.tokenizer.validate(path + " (/tokenizer)");
  return ck;
}

}  // namespace linspec
