#include "data/token_shards.h"

#include <hdf5.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/size_limits.h"
#include "model/checkpoint.h"
#include "model/hdf5_util.h"

namespace linspec {
namespace {

constexpr int kShardFormatVersion = 1;

void write_array(hid_t group, const char* name, const void* data, hsize_t n, hid_t type) {
  h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  h5::Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (n > 0) {
    hsize_t chunk = std::min<hsize_t>(n, 1 << 16);
    H5Pset_chunk(plist.get(), 1, &chunk);
    H5Pset_shuffle(plist.get());
    H5Pset_deflate(plist.get(), 1);
  }
  h5::Handle ds(H5Dcreate2(group, name, type, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) throw std::runtime_error(std::string("HDF5: cannot create dataset ") + name);
  if (n > 0 && H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw std::runtime_error(std::string("HDF5: cannot write dataset ") + name);
}

std::string read_root_string(hid_t file, const char* name, const std::string& path) {
  if (!h5::has_attr(file, name))
    throw_input_error(path, ": missing attribute '", name, "' (not a linspec token shard file?)");
  return h5::read_string_attr(file, name);
}

// A 1-D unsigned integer dataset read as T. Strict: a float or signed dataset is refused rather than converted
// (HDF5 would round floats and clip negative values silently), and the size is checked against the file and the
// load's memory budget before the vector is allocated.
template <typename T>
std::vector<T> read_array(hid_t file, const std::string& path, hid_t mem_type, const std::string& fname,
                          size_limits::LoadBudget& budget) {
  const std::string what = "dataset '" + path + "'";
  if (!h5::has_link(file, path)) throw_input_error(fname, ": missing ", what);
  h5::Handle ds = h5::open_dataset(file, path);
  h5::Handle type(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_sign(type.get()) != H5T_SGN_NONE ||
      H5Tget_size(type.get()) > sizeof(T))
    throw_input_error(fname, ": ", what, " must hold unsigned integers of at most ", 8 * sizeof(T), " bits");
  if (h5::dataset_dims(ds.get()).size() != 1) throw_input_error(fname, ": ", what, " must be 1-D");
  const uint64_t bytes = h5::checked_dataset_bytes(ds.get(), sizeof(T), fname, what);
  budget.reserve(bytes, what);
  std::vector<T> out(bytes / sizeof(T));
  if (!out.empty() && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw_input_error(fname, ": cannot read ", what, " (corrupt file?)");
  return out;
}

void write_split(hid_t file, const char* name, const TokenSplit& s) {
  h5::Handle g = h5::create_group(file, name);
  write_array(g.get(), "tokens", s.tokens.data(), s.tokens.size(), H5T_NATIVE_UINT32);
  write_array(g.get(), "doc_offsets", s.doc_offsets.data(), s.doc_offsets.size(), H5T_NATIVE_UINT64);
}

TokenSplit read_split(hid_t file, const std::string& name, const std::string& fname, size_limits::LoadBudget& budget) {
  TokenSplit s;
  s.source = fname + " (/" + name + "/tokens)";
  s.tokens = read_array<uint32_t>(file, "/" + name + "/tokens", H5T_NATIVE_UINT32, fname, budget);
  s.doc_offsets = read_array<uint64_t>(file, "/" + name + "/doc_offsets", H5T_NATIVE_UINT64, fname, budget);
  uint64_t prev = 0;
  for (uint64_t off : s.doc_offsets) {
    if (off < prev || off > s.tokens.size())
      throw_input_error(fname, ": dataset '/", name, "/doc_offsets' is not sorted within the token count");
    prev = off;
  }
  return s;
}

void check_split_ids(const TokenSplit& s, const char* name, int64_t vocab_size, const std::string& path) {
  for (size_t i = 0; i < s.tokens.size(); ++i)
    if (static_cast<int64_t>(s.tokens[i]) >= vocab_size)
      throw_input_error(path, ": dataset '/", name, "/tokens': token ", i, " has id ", s.tokens[i],
                        ", outside the model's vocabulary of ", vocab_size, " (made with another tokenizer?)");
}

}  // namespace

void save_token_shards(const std::string& path, const TokenShards& shards) {
  write_hdf5_atomically(path, [&](H5Handle file) {
    const hid_t f = static_cast<hid_t>(file);
    h5::write_string_attr(f, "format", "linspec-tokens");
    h5::write_string_attr(f, "format_version", std::to_string(kShardFormatVersion));
    h5::write_string_attr(f, "tokenizer_fingerprint", xxh64_hex(shards.tokenizer_fingerprint));
    h5::write_string_attr(f, "sources", nlohmann::json(shards.sources).dump());
    write_split(f, "train", shards.train);
    write_split(f, "val", shards.val);
  });
}

TokenShards load_token_shards(const std::string& path) {
  TokenShards out;
  with_hdf5_file(path, [&](H5Handle file) { out = read_token_shards(file, path); });
  return out;
}

TokenShards read_token_shards(int64_t file, const std::string& path) {
  TokenShards out;
  const hid_t f = static_cast<hid_t>(file);
  if (read_root_string(f, "format", path) != "linspec-tokens")
    throw_input_error(path, ": not a linspec token shard file (attribute 'format')");
  h5::read_format_version(f, kShardFormatVersion, "token shard file");
  const std::string fp = read_root_string(f, "tokenizer_fingerprint", path);
  try {
    out.tokenizer_fingerprint = std::stoull(fp, nullptr, 16);
  } catch (...) {
    throw_input_error(path, ": attribute 'tokenizer_fingerprint' is not hex: ", fp);
  }
  try {
    out.sources = nlohmann::json::parse(read_root_string(f, "sources", path)).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    throw_input_error(path, ": attribute 'sources' is not a JSON list of strings");
  }
  size_limits::LoadBudget budget(path);
  out.train = read_split(f, "train", path, budget);
  out.val = read_split(f, "val", path, budget);
  return out;
}

TokenShards load_token_shards(const std::string& path, int64_t vocab_size) {
  TokenShards out = load_token_shards(path);
  check_token_ids(out, vocab_size, path);
  return out;
}

void check_token_ids(const TokenShards& shards, int64_t vocab_size, const std::string& path) {
  check_split_ids(shards.train, "train", vocab_size, path);
  check_split_ids(shards.val, "val", vocab_size, path);
}

}  // namespace linspec
