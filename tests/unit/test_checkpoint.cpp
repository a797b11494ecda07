// Native HDF5 checkpoint: exact round trip of config, tensors (f32, bf16, others), tokenizer (spm bytes too)
// and attributes; corruption detected by the per-tensor xxh64; malformed files refused by name; writes are
// atomic (a failed save leaves the old file and no temporary behind).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/hdf5_util.h"
#include "tests/unit/format_test_util.h"

namespace linspec {
namespace {

namespace fs = std::filesystem;
using testing::temp_path;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

Checkpoint sample_checkpoint() {
  Checkpoint ck;
  ModelConfig& c = ck.config;
  c.architecture = "llama";
  c.vocab_size = 5;
  c.hidden_size = 4;
  c.intermediate_size = 6;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 2;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  c.max_position_embeddings = 131072;
  c.tie_word_embeddings = true;
  c.bos_token_id = 0;
  c.eos_token_ids = {1, 4};
  std::vector<float> w(20);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i) - 1.0f;
  ck.tensors["embed_tokens.weight"] = Tensor::from_vector(w, {5, 4});
  ck.tensors["norm.weight"] = Tensor::from_vector<float>({1, 2, 3, 4}, {4}).to(DType::BF16);
  ck.tensors["lambda"] = Tensor::scalar(0.5);
  ck.tensors["positions"] = Tensor::from_vector<int64_t>({-3, 7}, {2});
  TokenizerData& t = ck.tokenizer;
  t.type = "spm";
  t.vocab = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi", "<0x0A>"};
  t.scores = {0, 0, 0, -1.5f, -2};
  t.token_types = {kTokenUnknown, kTokenControl, kTokenControl, kTokenNormal, kTokenByte};
  t.bos_id = 1;
  t.eos_id = 2;
  t.unk_id = 0;
  t.add_bos = true;
  t.pre = "default";
  t.spm_model = std::string("\x0a\x05\x0a\x03<s>\x00\xff", 10);
  ck.config_yaml = "train:\n  steps: 3\n";
  ck.extra_attrs["source"] = "unit test";
  return ck;
}

void expect_same_bytes(const Tensor& a, const Tensor& b, const std::string& name) {
  ASSERT_EQ(a.dtype(), b.dtype()) << name;
  ASSERT_EQ(a.shape(), b.shape()) << name;
  EXPECT_EQ(std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(), a.nbytes()), 0) << name;
}

TEST(Checkpoint, RoundTripIsExact) {
  const std::string path = temp_path("roundtrip.h5");
  const Checkpoint ck = sample_checkpoint();
  save_checkpoint(path, ck);
  const Checkpoint back = load_checkpoint(path);
  EXPECT_EQ(nlohmann::json(back.config), nlohmann::json(ck.config));
  ASSERT_EQ(back.tensors.size(), ck.tensors.size());
  for (const auto& [name, t] : ck.tensors) expect_same_bytes(back.tensors.at(name), t, name);
  EXPECT_EQ(nlohmann::json(back.tokenizer), nlohmann::json(ck.tokenizer));
  EXPECT_EQ(back.tokenizer.spm_model, ck.tokenizer.spm_model);
  EXPECT_EQ(back.config_yaml, ck.config_yaml);
  EXPECT_EQ(back.extra_attrs, ck.extra_attrs);
  // Layout per docs/formats.md §2.
  with_hdf5_file(path, [&](H5Handle f) {
    EXPECT_EQ(h5::read_string_attr(f, "format"), "linspec");
    EXPECT_EQ(h5::read_int_attr(f, "format_version"), 1);
    h5::Handle ds = h5::open_dataset(f, "model/norm.weight");
    EXPECT_EQ(h5::read_string_attr(ds.get(), "dtype"), "bf16");
    EXPECT_EQ(h5::read_u64_attr(ds.get(), "xxh64"), tensor_xxh64(ck.tensors.at("norm.weight")));
    auto listed = list_tensor_group(f, "model", path);
    ASSERT_EQ(listed.size(), 4u);
    EXPECT_EQ(listed[0].name, "embed_tokens.weight");
    EXPECT_EQ(listed[0].shape, (Shape{5, 4}));
    EXPECT_EQ(listed[0].dtype, "f32");
  });
  EXPECT_EQ(xxh64_hex(0x1234), "0000000000001234");
}

TEST(Checkpoint, FlippedByteIsDetectedByChecksum) {
  const std::string path = temp_path("flip.h5");
  Checkpoint ck = sample_checkpoint();
  std::vector<float> pattern(256);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = 1000.0f + static_cast<float>(i) * 0.001f;
  ck.tensors["layers.0.mlp.up_proj.weight"] = Tensor::from_vector(pattern, {16, 16});
  save_checkpoint(path, ck);
  std::string bytes = testing::read_file(path);
  const std::string needle(reinterpret_cast<const char*>(pattern.data()), pattern.size() * 4);
  const size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 517] ^= 0x10;
  testing::write_file(path, bytes);
  try {
    load_checkpoint(path);
    FAIL() << "corruption not detected";
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), path);
    EXPECT_CONTAINS(e.what(), "model/layers.0.mlp.up_proj.weight");
    EXPECT_CONTAINS(e.what(), "checksum");
  }
  const Checkpoint unverified = load_checkpoint(path, /*verify_checksums=*/false);
  EXPECT_NE(unverified.tensors.at("layers.0.mlp.up_proj.weight").to_vector<float>()[129], pattern[129]);
}

TEST(Checkpoint, SaveIsAtomic) {
  const std::string path = temp_path("atomic.h5");
  testing::write_file(path, "old contents");
  EXPECT_THROW(write_hdf5_atomically(path,
                                     [](H5Handle f) {
                                       h5::write_string_attr(f, "format", "linspec");
                                       throw_input_error("simulated failure half way");
                                     }),
               InputError);
  EXPECT_EQ(testing::read_file(path), "old contents");
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(e.path().filename().string().find("atomic.h5.tmp"), std::string::npos) << e.path();
  save_checkpoint(path, sample_checkpoint());  // replacing an existing file succeeds
  EXPECT_EQ(load_checkpoint(path).tensors.size(), 4u);

  const std::string nowhere = temp_path("no/such/dir/x.h5");
  try {
    save_checkpoint(nowhere, sample_checkpoint());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), nowhere);
  }
}

// Writes a checkpoint and then damages it with `edit` (on the open file) before the rename.
std::string damaged(const std::string& name, const std::function<void(hid_t)>& edit) {
  const std::string path = temp_path(name);
  write_hdf5_atomically(path, [&](H5Handle f) {
    write_checkpoint_contents(f, sample_checkpoint());
    edit(f);
  });
  return path;
}

std::string load_error(const std::string& path) {
  try {
    load_checkpoint(path);
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), path);
    return e.what();
  }
  return "loaded";
}

TEST(Checkpoint, MalformedFilesAreRefusedByName) {
  const std::string text = temp_path("text.h5");
  testing::write_file(text, "not hdf5 at all");
  EXPECT_CONTAINS(load_error(text), "not an HDF5 file");
  EXPECT_CONTAINS(load_error(temp_path("missing.h5")), "no such file");

  EXPECT_CONTAINS(load_error(damaged("noformat.h5", [](hid_t f) { H5Adelete(f, "format"); })), "not a linspec");
  EXPECT_CONTAINS(load_error(damaged("version.h5", [](hid_t f) { h5::write_int_attr(f, "format_version", 7); })),
                  "format_version 7");
  EXPECT_CONTAINS(load_error(damaged("noconfig.h5", [](hid_t f) { H5Ldelete(f, "config", H5P_DEFAULT); })),
                  "config");
  EXPECT_CONTAINS(load_error(damaged("badjson.h5", [](hid_t f) {
                    h5::Handle g = h5::open_group(f, "config");
                    h5::write_string_attr(g.get(), "model", "{\"architecture\": \"llama\"}");
                    H5Adelete(g.get(), "model_xxh64");  // an edit that also drops the checksum reaches the parser
                  })),
                  "vocab_size");
  EXPECT_CONTAINS(load_error(damaged("nohash.h5", [](hid_t f) {
                    h5::Handle d = h5::open_dataset(f, "model/norm.weight");
                    H5Adelete(d.get(), "xxh64");
                  })),
                  "model/norm.weight");
  EXPECT_CONTAINS(load_error(damaged("notok.h5", [](hid_t f) { H5Ldelete(f, "tokenizer", H5P_DEFAULT); })),
                  "tokenizer");
}

TEST(Checkpoint, GenericTensorGroupsNestAndVerify) {
  const std::string path = temp_path("groups.h5");
  std::map<std::string, Tensor> heads = {{"0/w1", Tensor::from_vector<float>({1, 2, 3}, {3})},
                                         {"1/w1", Tensor::from_vector<double>({4, 5}, {2, 1})}};
  write_hdf5_atomically(path, [&](H5Handle f) { write_tensor_group(f, "draft/heads", heads); });
  with_hdf5_file(path, [&](H5Handle f) {
    auto back = read_tensor_group(f, "draft/heads", path, true);
    ASSERT_EQ(back.size(), 2u);
    for (const auto& [name, t] : heads) expect_same_bytes(back.at(name), t, name);
    EXPECT_THROW(read_tensor_group(f, "optimizer", path, true), InputError);
  });
}

}  // namespace
}  // namespace linspec
