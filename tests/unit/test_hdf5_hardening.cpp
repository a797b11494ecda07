// Issue 15, HDF5 inputs: link cycles, forged dataset sizes, strict token dtypes and ids, format versions, NULLPAD
// strings and the checksums of /config and /tokenizer. Every malformed file is built here and must be refused
// with an InputError naming the file and the link, dataset or attribute at fault.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <functional>

#include "core/error.h"
#include "data/loader.h"
#include "data/token_shards.h"
#include "model/checkpoint.h"
#include "model/formats/pretrained.h"
#include "model/hdf5_util.h"
#include "tests/unit/format_test_util.h"

namespace linspec {
namespace {

using testing::temp_path;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

Checkpoint tiny_checkpoint() {
  Checkpoint ck;
  ModelConfig& c = ck.config;
  c.vocab_size = 4;
  c.hidden_size = 2;
  c.intermediate_size = 2;
  c.num_layers = 1;
  c.num_heads = 1;
  c.num_kv_heads = 1;
  c.head_dim = 2;
  c.rope_theta = 500000;
  ck.tensors["norm.weight"] = Tensor::from_vector<float>({1, 2}, {2});
  ck.tokenizer.type = "bpe";
  ck.tokenizer.vocab = {"a", "b", "c", "d"};
  return ck;
}

// A valid checkpoint, then `edit` applied to the file opened read-write.
std::string edited_checkpoint(const std::string& name, const std::function<void(hid_t)>& edit) {
  const std::string path = temp_path(name);
  save_checkpoint(path, tiny_checkpoint());
  h5::quiet_errors();
  h5::Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  edit(f.get());
  return path;
}

using linspec::testing::input_error_of;

// A chunked dataset declaring `n` elements with no chunk written: it costs the file nothing.
void add_sparse_dataset(hid_t parent, const char* name, hid_t type, hsize_t n) {
  h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const hsize_t chunk = 1 << 16;
  H5Pset_chunk(dcpl.get(), 1, &chunk);
  h5::Handle ds(H5Dcreate2(parent, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  ASSERT_TRUE(ds.valid());
  h5::write_string_attr(ds.get(), "dtype", "f32");
  h5::write_u64_attr(ds.get(), "xxh64", 0);
}

TEST(Hdf5Hardening, LinkCyclesAreRefusedWithTheLinkPath) {
  struct Case {
    const char* name;
    std::function<void(hid_t)> link;
  };
  const std::vector<Case> cases = {
      {"hard_cycle.h5", [](hid_t f) { H5Lcreate_hard(f, "/model", f, "/model/loop", H5P_DEFAULT, H5P_DEFAULT); }},
      {"soft_cycle.h5", [](hid_t f) { H5Lcreate_soft("/model", f, "/model/loop", H5P_DEFAULT, H5P_DEFAULT); }},
      {"root_cycle.h5", [](hid_t f) { H5Lcreate_soft("/", f, "/model/up", H5P_DEFAULT, H5P_DEFAULT); }},
      {"external.h5",
       [](hid_t f) { H5Lcreate_external("/etc/other.h5", "/", f, "/model/ext", H5P_DEFAULT, H5P_DEFAULT); }},
  };
  for (const Case& c : cases) {
    const std::string path = edited_checkpoint(c.name, c.link);
    const std::string msg = input_error_of([&] { load_checkpoint(path); });
    EXPECT_CONTAINS(msg, path);
    EXPECT_CONTAINS(msg, "/model/");
    // `info` walks the same groups.
    EXPECT_CONTAINS(input_error_of([&] { describe_model_file(path); }), "/model/");
  }
}

TEST(Hdf5Hardening, SnapshotGroupsAreTraversedWithTheSameGuard) {
  const std::string path = temp_path("optimizer_cycle.h5");
  write_hdf5_atomically(path, [](H5Handle f) {
    write_tensor_group(f, "optimizer", {{"m/w", Tensor::from_vector<float>({1}, {1})}});
    H5Lcreate_hard(f, "/optimizer", f, "/optimizer/m/back", H5P_DEFAULT, H5P_DEFAULT);
  });
  with_hdf5_file(path, [&](H5Handle f) {
    const std::string msg = input_error_of([&] { read_tensor_group(f, "optimizer", path, true); });
    EXPECT_CONTAINS(msg, path);
    EXPECT_CONTAINS(msg, "/optimizer/m/back");
    EXPECT_CONTAINS(msg, "cycle");
  });
}

TEST(Hdf5Hardening, ForgedDatasetSizesAreRefusedBeforeAllocation) {
  const std::string path = edited_checkpoint("sparse.h5", [](hid_t f) {
    h5::Handle g = h5::open_group(f, "model");
    add_sparse_dataset(g.get(), "huge.weight", H5T_IEEE_F32LE, hsize_t{1} << 40);
  });
  const std::string msg = input_error_of([&] { load_checkpoint(path, /*verify_checksums=*/false); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "model/huge.weight");
  EXPECT_CONTAINS(msg, "chunks");

  // A real chunked dataset whose every chunk is present still loads.
  const std::string ok = edited_checkpoint("chunked_ok.h5", [](hid_t f) {
    h5::Handle g = h5::open_group(f, "model");
    const hsize_t n = 3, chunk = 2;
    h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(dcpl.get(), 1, &chunk);
    H5Pset_deflate(dcpl.get(), 1);
    h5::Handle ds(H5Dcreate2(g.get(), "extra", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                  H5Dclose);
    const float v[3] = {1, 2, 3};
    H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    h5::write_string_attr(ds.get(), "dtype", "f32");
    h5::write_u64_attr(ds.get(), "xxh64", tensor_xxh64(Tensor::from_vector<float>({1, 2, 3}, {3})));
  });
  EXPECT_EQ(load_checkpoint(ok).tensors.at("extra").to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

TEST(Hdf5Hardening, FormatVersionIsChecked) {
  struct Case {
    const char* name;
    std::function<void(hid_t)> edit;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"v2.h5", [](hid_t f) { h5::write_int_attr(f, "format_version", 2); }, "newer linspec"},
      {"v0.h5", [](hid_t f) { h5::write_int_attr(f, "format_version", 0); }, "format_version"},
      {"vtext.h5", [](hid_t f) { h5::write_string_attr(f, "format_version", "one"); }, "format_version"},
      {"vnone.h5", [](hid_t f) { H5Adelete(f, "format_version"); }, "format_version"},
  };
  for (const Case& c : cases) {
    const std::string path = edited_checkpoint(c.name, c.edit);
    const std::string msg = input_error_of([&] { load_checkpoint(path); });
    EXPECT_CONTAINS(msg, path);
    EXPECT_CONTAINS(msg, c.needle);
  }
}

TEST(Hdf5Hardening, NullpadStringAttributesKeepTheirLastCharacter) {
  const std::string path = temp_path("nullpad.h5");
  write_hdf5_atomically(path, [](H5Handle f) {
    for (H5T_str_t pad : {H5T_STR_NULLPAD, H5T_STR_NULLTERM, H5T_STR_SPACEPAD}) {
      const std::string value = "linspec";
      h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type.get(), pad == H5T_STR_NULLTERM ? value.size() + 1 : value.size());
      H5Tset_strpad(type.get(), pad);
      h5::Handle space(H5Screate(H5S_SCALAR), H5Sclose);
      const std::string name = "s" + std::to_string(static_cast<int>(pad));
      h5::Handle a(H5Acreate2(f, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
      H5Awrite(a.get(), type.get(), value.c_str());
    }
  });
  with_hdf5_file(path, [](H5Handle f) {
    for (H5T_str_t pad : {H5T_STR_NULLPAD, H5T_STR_NULLTERM, H5T_STR_SPACEPAD})
      EXPECT_EQ(h5::read_string_attr(f, "s" + std::to_string(static_cast<int>(pad))), "linspec") << pad;
  });
}

TEST(Hdf5Hardening, ConfigAndTokenizerAttributesAreChecksummed) {
  // One changed digit of rope_theta: refused, naming the file and the attribute.
  const std::string path = edited_checkpoint("rope_digit.h5", [](hid_t f) {
    h5::Handle g = h5::open_group(f, "config");
    std::string model = h5::read_string_attr(g.get(), "model");
    const size_t at = model.find("500000");
    ASSERT_NE(at, std::string::npos);
    model[at] = '6';
    h5::write_string_attr(g.get(), "model", model);
  });
  const std::string msg = input_error_of([&] { load_checkpoint(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "'model' on '/config'");
  EXPECT_CONTAINS(msg, "checksum");

  const std::string tok = edited_checkpoint("tok_edit.h5", [](hid_t f) {
    h5::Handle g = h5::open_group(f, "tokenizer");
    std::string json = h5::read_string_attr(g.get(), "json");
    json.replace(json.find("\"d\""), 3, "\"e\"");
    h5::write_string_attr(g.get(), "json", json);
  });
  EXPECT_CONTAINS(input_error_of([&] { load_checkpoint(tok); }), "'json' on '/tokenizer'");

  // Checkpoints written before the checksums existed still load.
  const std::string old = edited_checkpoint("no_attr_sums.h5", [](hid_t f) {
    h5::Handle c = h5::open_group(f, "config");
    h5::Handle t = h5::open_group(f, "tokenizer");
    H5Adelete(c.get(), "model_xxh64");
    H5Adelete(t.get(), "json_xxh64");
  });
  EXPECT_DOUBLE_EQ(load_checkpoint(old).config.rope_theta, 500000);
}

// ---- token shards ----

TokenShards tiny_shards() {
  TokenShards s;
  s.train.tokens = {1, 2, 3, 0, 1, 2, 3};
  s.train.doc_offsets = {0, 4};
  s.val.tokens = {3, 2, 1};
  s.val.doc_offsets = {0};
  s.tokenizer_fingerprint = 0x1234;
  return s;
}

std::string edited_shards(const std::string& name, const std::function<void(hid_t)>& edit) {
  const std::string path = temp_path(name);
  save_token_shards(path, tiny_shards());
  h5::quiet_errors();
  h5::Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  edit(f.get());
  return path;
}

// Replaces /<split>/tokens by a 1-D dataset of `type` holding `n` values (all chunks written when `write`).
void replace_tokens(hid_t f, const char* split, hid_t type, hsize_t n, bool write) {
  h5::Handle g = h5::open_group(f, split);
  H5Ldelete(g.get(), "tokens", H5P_DEFAULT);
  if (!write) return add_sparse_dataset(g.get(), "tokens", type, n);
  h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  h5::Handle ds(H5Dcreate2(g.get(), "tokens", type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  std::vector<double> v(n, 1.0);
  H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
}

TEST(TokenShardHardening, MalformedShardsNameFileAndDataset) {
  struct Case {
    const char* name;
    std::function<void(hid_t)> edit;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"float.h5", [](hid_t f) { replace_tokens(f, "train", H5T_IEEE_F32LE, 8, true); }, "/train/tokens"},
      {"signed.h5", [](hid_t f) { replace_tokens(f, "train", H5T_STD_I32LE, 8, true); }, "/train/tokens"},
      {"wide.h5", [](hid_t f) { replace_tokens(f, "val", H5T_STD_U64LE, 8, true); }, "/val/tokens"},
      {"huge_val.h5", [](hid_t f) { replace_tokens(f, "val", H5T_STD_U32LE, hsize_t{1} << 42, false); }, "/val/tokens"},
      {"v2.h5", [](hid_t f) { h5::write_string_attr(f, "format_version", "2"); }, "newer linspec"},
      {"vbad.h5", [](hid_t f) { h5::write_string_attr(f, "format_version", "1x"); }, "format_version"},
  };
  for (const Case& c : cases) {
    const std::string path = edited_shards(c.name, c.edit);
    const std::string msg = input_error_of([&] { load_token_shards(path); });
    EXPECT_CONTAINS(msg, path);
    EXPECT_CONTAINS(msg, c.needle);
  }
}

TEST(TokenShardHardening, TokenIdsAreCheckedAgainstTheVocabularyAtLoad) {
  const std::string path = temp_path("ids.h5");
  save_token_shards(path, tiny_shards());
  EXPECT_NO_THROW(load_token_shards(path, 4));
  const std::string msg = input_error_of([&] { load_token_shards(path, 3); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "/train/tokens");
  EXPECT_CONTAINS(msg, "token 2 has id 3");
  TokenShards s = tiny_shards();
  s.train.tokens = {0, 1};
  EXPECT_CONTAINS(input_error_of([&] { check_token_ids(s, 3, "x.h5"); }), "'/val/tokens'");
}

TEST(TokenShardHardening, EmptyTrainSplitIsReportedAgainstTheFile) {
  const std::string path = temp_path("empty_train.h5");
  TokenShards s = tiny_shards();
  s.train = {};
  save_token_shards(path, s);
  const TokenShards back = load_token_shards(path);
  const std::string msg = input_error_of([&] { WindowLoader(back.train, 4, 0, 1, 0); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "/train/tokens");
}

}  // namespace
}  // namespace linspec
