#include "data/token_shards.h"

#include <hdf5.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/checkpoint.h"

namespace linspec {
namespace {

constexpr int kShardFormatVersion = 1;

void write_array(hid_t group, const char* name, const void* data, hsize_t n, hid_t type) {
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  if (n > 0) {
    hsize_t chunk = std::min<hsize_t>(n, 1 << 16);
    H5Pset_chunk(plist, 1, &chunk);
    H5Pset_shuffle(plist);
    H5Pset_deflate(plist, 1);
  }
  hid_t ds = H5Dcreate2(group, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  if (ds < 0) throw std::runtime_error(std::string("HDF5: cannot create dataset ") + name);
  if (n > 0 && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw std::runtime_error(std::string("HDF5: cannot write dataset ") + name);
  H5Dclose(ds);
  H5Pclose(plist);
  H5Sclose(space);
}

void write_string_attr(hid_t obj, const char* name, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.empty() ? 1 : value.size());
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, type, value.empty() ? "" : value.data());
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

std::string read_string_attr(hid_t obj, const char* name, const std::string& file) {
  if (H5Aexists(obj, name) <= 0) throw_input_error(file, ": missing attribute '", name, "' (not a linspec token shard file?)");
  hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t type = H5Aget_type(attr);
  if (H5Tget_class(type) != H5T_STRING) throw_input_error(file, ": attribute '", name, "' is not a string");
  size_t size = H5Tget_size(type);
  std::string out(size, '\0');
  hid_t mem = H5Tcopy(H5T_C_S1);
  H5Tset_size(mem, size);
  H5Aread(attr, mem, out.data());
  H5Tclose(mem);
  H5Tclose(type);
  H5Aclose(attr);
  out.resize(std::strlen(out.c_str()));
  return out;
}

template <typename T>
std::vector<T> read_array(hid_t file, const std::string& path, hid_t mem_type, const std::string& fname) {
  if (H5Lexists(file, path.substr(0, path.find('/', 1)).c_str(), H5P_DEFAULT) <= 0 ||
      H5Lexists(file, path.c_str(), H5P_DEFAULT) <= 0)
    throw_input_error(fname, ": missing dataset '", path, "'");
  hid_t ds = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  if (H5Sget_simple_extent_ndims(space) != 1) throw_input_error(fname, ": dataset '", path, "' must be 1-D");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  std::vector<T> out(n);
  if (n > 0 && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw_input_error(fname, ": cannot read dataset '", path, "' (corrupt file?)");
  H5Sclose(space);
  H5Dclose(ds);
  return out;
}

void write_split(hid_t file, const char* name, const TokenSplit& s) {
  hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  write_array(g, "tokens", s.tokens.data(), s.tokens.size(), H5T_NATIVE_UINT32);
  write_array(g, "doc_offsets", s.doc_offsets.data(), s.doc_offsets.size(), H5T_NATIVE_UINT64);
  H5Gclose(g);
}

TokenSplit read_split(hid_t file, const std::string& name, const std::string& fname) {
  TokenSplit s;
  s.tokens = read_array<uint32_t>(file, "/" + name + "/tokens", H5T_NATIVE_UINT32, fname);
  s.doc_offsets = read_array<uint64_t>(file, "/" + name + "/doc_offsets", H5T_NATIVE_UINT64, fname);
  uint64_t prev = 0;
  for (uint64_t off : s.doc_offsets) {
    if (off < prev || off > s.tokens.size())
      throw_input_error(fname, ": dataset '/", name, "/doc_offsets' is not sorted within the token count");
    prev = off;
  }
  return s;
}

}  // namespace

void save_token_shards(const std::string& path, const TokenShards& shards) {
  write_hdf5_atomically(path, [&](H5Handle file) {
    const hid_t f = static_cast<hid_t>(file);
    write_string_attr(f, "format", "linspec-tokens");
    write_string_attr(f, "format_version", std::to_string(kShardFormatVersion));
    write_string_attr(f, "tokenizer_fingerprint", xxh64_hex(shards.tokenizer_fingerprint));
    write_string_attr(f, "sources", nlohmann::json(shards.sources).dump());
    write_split(f, "train", shards.train);
    write_split(f, "val", shards.val);
  });
}

TokenShards load_token_shards(const std::string& path) {
  TokenShards out;
  with_hdf5_file(path, [&](H5Handle file) {
    const hid_t f = static_cast<hid_t>(file);
    if (read_string_attr(f, "format", path) != "linspec-tokens")
      throw_input_error(path, ": not a linspec token shard file (attribute 'format')");
    const std::string fp = read_string_attr(f, "tokenizer_fingerprint", path);
    try {
      out.tokenizer_fingerprint = std::stoull(fp, nullptr, 16);
    } catch (...) {
      throw_input_error(path, ": attribute 'tokenizer_fingerprint' is not hex: ", fp);
    }
    try {
      out.sources = nlohmann::json::parse(read_string_attr(f, "sources", path)).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception&) {
      throw_input_error(path, ": attribute 'sources' is not a JSON list of strings");
    }
    out.train = read_split(f, "train", path);
    out.val = read_split(f, "val", path);
  });
  return out;
}

}  // namespace linspec
