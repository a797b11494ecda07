// GGUF reader: dequantisation of every supported type against gguf-py (golden file from
// tests/reference/make_gguf_goldens.py), metadata of every value type, malformed headers (each an InputError
// naming the file and the tensor/key), and a tiny LLaMA model file end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>

#include "core/error.h"
#include "model/formats/gguf.h"
#include "model/formats/gguf_model.h"
#include "model/formats/pretrained.h"
#include "tests/unit/format_test_util.h"

namespace linspec {
namespace {

using testing::GgufBuilder;
using testing::put;
using testing::temp_path;
using testing::write_file;

const std::string kGolden = std::string(LINSPEC_SOURCE_DIR) + "/tests/reference/golden/gguf_dequant.gguf";

// The message of the InputError that opening `bytes` as a GGUF file raises ("" when it opens fine).
std::string open_error(const std::string& bytes, const std::string& name) {
  const std::string path = temp_path(name + ".gguf");
  write_file(path, bytes);
  try {
    GgufFile f(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

// Opening must fail with a message naming the file and `needle` (the tensor or key at fault).
void expect_rejected_bytes(const std::string& bytes, const std::string& name, const std::string& needle) {
  const std::string msg = open_error(bytes, name);
  ASSERT_FALSE(msg.empty()) << name << ": the file was accepted";
  EXPECT_CONTAINS(msg, temp_path(name + ".gguf"));
  EXPECT_CONTAINS(msg, needle);
}
void expect_rejected(const GgufBuilder& b, const std::string& name, const std::string& needle) {
  expect_rejected_bytes(b.build(), name, needle);
}

GgufBuilder one_tensor_file() {
  GgufBuilder b;
  b.str("general.architecture", "test");
  b.f32_tensor("t.weight", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  return b;
}

TEST(GgufDequant, EveryTypeMatchesGgufPyBitForBit) {
  GgufFile f(kGolden);
  const std::vector<std::string> types = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0",
                                          "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"};
  for (const auto& type : types) {
    SCOPED_TRACE(type);
    const GgufTensorInfo* q = f.find_tensor("q." + type);
    const GgufTensorInfo* ref = f.find_tensor("ref." + type);
    ASSERT_TRUE(q && ref);
    EXPECT_STREQ(q->type.name, type.c_str());
    ASSERT_EQ(ref->type.type, ggml::Type::F32);
    ASSERT_EQ(q->shape(), ref->shape());
    const Tensor got = f.dequantize(*q);
    const auto* want = reinterpret_cast<const float*>(f.tensor_bytes(*ref));
    ASSERT_EQ(got.numel(), ref->numel);
    int64_t mismatches = 0, first = -1;
    for (int64_t i = 0; i < got.numel(); ++i)
      if (std::memcmp(&got.data<float>()[i], &want[i], 4) != 0 && mismatches++ == 0) first = i;
    EXPECT_EQ(mismatches, 0) << "first mismatch at " << first << ": " << got.data<float>()[first] << " vs "
                             << want[first];
  }
}

TEST(GgufMetadata, EveryValueType) {
  GgufFile f(kGolden);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "test");
  EXPECT_EQ(f.get_int("test.u8"), 200);
  EXPECT_EQ(f.get_int("test.i8"), -100);
  EXPECT_EQ(f.get_int("test.u16"), 60000);
  EXPECT_EQ(f.get_int("test.i16"), -30000);
  EXPECT_EQ(f.get_int("test.u32"), 4000000000LL);
  EXPECT_EQ(f.get_int("test.i32"), -2000000000LL);
  EXPECT_EQ(f.get_float("test.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(std::get<uint64_t>(f.get("test.u64").value), (1ull << 63) + 5);
  EXPECT_THROW(f.get_int("test.u64"), InputError);  // does not fit int64: refused, not wrapped
  EXPECT_EQ(f.get_int("test.i64"), -(1LL << 62));
  EXPECT_EQ(f.get_float("test.f64"), 0.1);
  EXPECT_TRUE(f.get_bool("test.bool", false));
  EXPECT_EQ(f.get_string("test.string"), "h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_EQ(f.get_int_array("test.int_array"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f.get_string_array("test.string_array"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f.get_float_array("test.float_array"), (std::vector<float>{0.5f, -1.25f}));
  const auto& nested = std::get<std::vector<GgufValue>>(f.get("test.nested_array").value);
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(std::get<std::vector<GgufValue>>(nested[0].value).size(), 2u);
  EXPECT_EQ(std::get<std::vector<GgufValue>>(nested[1].value).size(), 1u);
  // Wrong-type and missing keys name the file and the key.
  try {
    f.get_string("test.u8");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), kGolden);
    EXPECT_CONTAINS(e.what(), "test.u8");
  }
  EXPECT_THROW(f.get_int("no.such.key"), InputError);
}

TEST(GgufHeader, Version2IsRead) {
  std::string bytes = testing::read_file(kGolden);
  const uint32_t v2 = 2;
  std::memcpy(bytes.data() + 4, &v2, 4);
  EXPECT_EQ(open_error(bytes, "v2"), "");
}

TEST(GgufHeader, BadMagicAndVersions) {
  GgufBuilder b = one_tensor_file();
  b.magic = 0x46554746;
  expect_rejected(b, "magic", "bad magic");
  for (uint32_t v : {1u, 4u, 0x03000000u}) {
    GgufBuilder bv = one_tensor_file();
    bv.version = v;
    expect_rejected(bv, "version" + std::to_string(v), "version");
  }
}

TEST(GgufHeader, EveryTruncationIsAnInputError) {
  const std::string bytes = one_tensor_file().build();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string msg = open_error(bytes.substr(0, n), "trunc");
    ASSERT_FALSE(msg.empty()) << "prefix of " << n << " bytes accepted";
    EXPECT_CONTAINS(msg, temp_path("trunc.gguf"));
    if (n > bytes.size() - 32) {  // only the data is cut: the tensor is named
      EXPECT_CONTAINS(msg, "t.weight");
    }
  }
}

TEST(GgufHeader, TensorInfoViolationsNameTheTensor) {
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].ne = {1ull << 32, 1ull << 32, 1ull << 32};
    expect_rejected(b, "overflow", "t.weight");
    EXPECT_CONTAINS(open_error(b.build(), "overflow"), "overflows");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].ne = {0, 2};
    expect_rejected(b, "zero_dim", "t.weight");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].ne = {1, 1, 1, 1, 8};
    expect_rejected(b, "five_dims", "t.weight");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].type = 99;
    expect_rejected(b, "unknown_type", "t.weight");
    EXPECT_CONTAINS(open_error(b.build(), "unknown_type"), "unknown ggml type id 99");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].offset = 8;
    expect_rejected(b, "misaligned", "t.weight");
    EXPECT_CONTAINS(open_error(b.build(), "misaligned"), "not aligned");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].offset = 1 << 20;
    expect_rejected_bytes(b.build().substr(0, 4096), "past_end", "t.weight");  // the data was never written
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensors[0].offset = 0xFFFFFFFFFFFFFFE0ull;  // aligned, and offset + size wraps around 64 bits
    expect_rejected(b, "wrap", "t.weight");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.f32_tensor("t.weight", {2}, {1, 2});
    expect_rejected(b, "duplicate", "duplicate tensor name 't.weight'");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.tensor("q.weight", {48, 1}, 2, std::string(18 * 2, '\0'));  // Q4_0 rows must be multiples of 32
    expect_rejected(b, "block", "q.weight");
    EXPECT_CONTAINS(open_error(b.build(), "block"), "block size");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.f32_tensor("u.weight", {4}, {1, 2, 3, 4});
    b.tensors[1].offset = 0;  // same bytes as t.weight
    expect_rejected(b, "overlap", "u.weight");
  }
}

TEST(GgufHeader, MetadataViolationsNameTheKey) {
  {
    GgufBuilder b = one_tensor_file();
    std::string v;
    put<uint64_t>(v, 1ull << 40);  // string length far beyond the limit
    b.raw_kv("bad.string", 8, v);
    expect_rejected(b, "long_string", "bad.string");
  }
  {
    GgufBuilder b = one_tensor_file();
    std::string v;
    put<uint32_t>(v, 4);
    put<uint64_t>(v, 1ull << 25);  // 32M uint32 elements that the file does not hold
    b.raw_kv("bad.array", 9, v);
    expect_rejected(b, "big_array", "bad.array");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.raw_kv("bad.type", 13, "");
    expect_rejected(b, "value_type", "bad.type");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.raw_kv("bad.bool", 7, std::string(1, 2));
    expect_rejected(b, "bool", "bad.bool");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.str("general.architecture", "again");
    expect_rejected(b, "dup_key", "general.architecture");
  }
  {
    GgufBuilder b = one_tensor_file();
    b.u32("general.alignment", 24);
    expect_rejected(b, "alignment", "general.alignment");
  }
}

TEST(GgufHeader, CustomAlignmentIsHonoured) {
  GgufBuilder b = one_tensor_file();
  b.alignment = 64;
  b.u32("general.alignment", 64);
  b.f32_tensor("u.weight", {3}, {9, 8, 7});
  const std::string path = temp_path("align64.gguf");
  write_file(path, b.build());
  GgufFile f(path);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.dequantize(*f.find_tensor("u.weight")).to_vector<float>(), (std::vector<float>{9, 8, 7}));
}

TEST(GgufHeader, KnownTypeWithoutKernelIsRefusedByName) {
  GgufBuilder b = one_tensor_file();
  b.tensor("k.weight", {256}, 16, std::string(66, '\0'));  // IQ2_XXS
  const std::string path = temp_path("iq2xxs.gguf");
  write_file(path, b.build());
  GgufFile f(path);
  try {
    f.dequantize(*f.find_tensor("k.weight"));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), "k.weight");
    EXPECT_CONTAINS(e.what(), "IQ2_XXS");
  }
}

// Random corruption of the golden header never crashes: it opens (and dequantises) or it is an InputError.
TEST(GgufHeader, CorruptedHeadersFailCleanly) {
  const std::string good = testing::read_file(kGolden);
  GgufFile ref(kGolden);
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    std::string bytes = good;
    const int flips = 1 + iter % 4;
    for (int k = 0; k < flips; ++k)
      bytes[rng() % ref.data_offset()] = static_cast<char>(rng() & 0xff);
    const std::string path = temp_path("fuzz.gguf");
    write_file(path, bytes);
    try {
      GgufFile f(path);
      for (const auto& t : f.tensors())
        if (t.type.dequantizable) f.dequantize(t);
    } catch (const InputError&) {
    }
  }
}

TEST(GgufModel, UnpermuteRopeRowsSmallExample) {
  // head_dim 4, two heads: GGUF row 2i+j of a head holds HF row j*2+i, so HF rows are GGUF rows 0,2,1,3.
  const Tensor g = Tensor::from_vector<float>({0, 1, 2, 3, 10, 11, 12, 13}, {8, 1});
  EXPECT_EQ(unpermute_rope_rows(g, 4).to_vector<float>(), (std::vector<float>{0, 2, 1, 3, 10, 12, 11, 13}));
}

TEST(GgufModel, NameMapping) {
  EXPECT_EQ(gguf_to_linspec_name("token_embd.weight"), "embed_tokens.weight");
  EXPECT_EQ(gguf_to_linspec_name("blk.12.attn_q.weight"), "layers.12.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_to_linspec_name("blk.0.ffn_norm.weight"), "layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(gguf_to_linspec_name("blk.3.ffn_down.weight"), "layers.3.mlp.down_proj.weight");
  EXPECT_EQ(gguf_to_linspec_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_linspec_name("blk.0.attn_rot_embd"), "");
  EXPECT_EQ(gguf_to_linspec_name("rope_freqs.weight"), "");
}

// A complete tiny LLaMA (2 layers, hidden 8, 2 heads of 4, 1 KV head) with a byte-level BPE tokenizer.
struct TinyGguf {
  GgufBuilder b;
  std::vector<float> q_gguf;
  // `sizes` replaces size keys (without the "<arch>." prefix) by uint64 values, e.g. a forged block_count.
  TinyGguf(bool tied = true, const std::string& arch = "llama", const std::map<std::string, uint64_t>& sizes = {}) {
    b.str("general.architecture", arch);
    const std::string p = arch + ".";
    auto size = [&](const std::string& key, uint32_t v) {
      auto it = sizes.find(key);
      if (it == sizes.end()) return b.u32(p + key, v);
      std::string bytes;
      put(bytes, it->second);
      b.raw_kv(p + key, 10, bytes);
    };
    size("block_count", 2);
    size("embedding_length", 8);
    size("feed_forward_length", 12);
    size("attention.head_count", 2);
    size("attention.head_count_kv", 1);
    size("context_length", 64);
    for (const char* key : {"attention.key_length", "vocab_size"})
      if (sizes.count(key)) size(key, 0);
    b.f32(p + "rope.freq_base", 5000.0f);
    b.f32(p + "attention.layer_norm_rms_epsilon", 1e-5f);
    b.str("tokenizer.ggml.model", "gpt2");
    b.str("tokenizer.ggml.pre", "smollm");
    b.str_array("tokenizer.ggml.tokens", {"a", "b", "ab", "<s>", "</s>", "c"});
    b.i32_array("tokenizer.ggml.token_type", {1, 1, 1, 3, 3, 1});
    b.str_array("tokenizer.ggml.merges", {"a b"});
    b.u32("tokenizer.ggml.bos_token_id", 3);
    b.u32("tokenizer.ggml.eos_token_id", 4);
    b.boolean("tokenizer.ggml.add_bos_token", true);
    auto iota = [](size_t n, float base) {
      std::vector<float> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
      return v;
    };
    b.f32_tensor("token_embd.weight", {8, 6}, iota(48, 0));
    b.f32_tensor("output_norm.weight", {8}, iota(8, 1));
    if (!tied) b.f32_tensor("output.weight", {8, 6}, iota(48, 500));
    for (int l = 0; l < 2; ++l) {
      const std::string s = "blk." + std::to_string(l) + ".";
      const float base = 1000.0f * (l + 1);
      b.f32_tensor(s + "attn_norm.weight", {8}, iota(8, base));
      b.f32_tensor(s + "ffn_norm.weight", {8}, iota(8, base + 10));
      q_gguf = iota(64, base + 100);
      b.f32_tensor(s + "attn_q.weight", {8, 8}, q_gguf);
      b.f32_tensor(s + "attn_k.weight", {8, 4}, iota(32, base + 200));
      b.f32_tensor(s + "attn_v.weight", {8, 4}, iota(32, base + 300));
      b.f32_tensor(s + "attn_output.weight", {8, 8}, iota(64, base + 400));
      b.f32_tensor(s + "ffn_gate.weight", {8, 12}, iota(96, base + 500));
      b.f32_tensor(s + "ffn_up.weight", {8, 12}, iota(96, base + 600));
      b.f32_tensor(s + "ffn_down.weight", {12, 8}, iota(96, base + 700));
    }
  }
  std::string write(const std::string& name) const {
    const std::string path = temp_path(name);
    write_file(path, b.build());
    return path;
  }
};

TEST(GgufModel, TinyLlamaLoads) {
  TinyGguf tiny;
  const std::string path = tiny.write("tiny.gguf");
  const Checkpoint ck = load_gguf_model(path);
  const ModelConfig& c = ck.config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.hidden_size, 8);
  EXPECT_EQ(c.intermediate_size, 12);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.vocab_size, 6);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_DOUBLE_EQ(c.rope_theta, 5000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 3);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{4}));
  EXPECT_EQ(ck.tensors.size(), 2u + 2u * 9u);
  EXPECT_FALSE(ck.tensors.count("lm_head.weight"));
  EXPECT_EQ(ck.tensors.at("embed_tokens.weight").shape(), (Shape{6, 8}));
  EXPECT_EQ(ck.tensors.at("layers.1.mlp.down_proj.weight").shape(), (Shape{8, 12}));
  EXPECT_EQ(ck.tensors.at("layers.1.mlp.down_proj.weight").to_vector<float>()[13], 2713.0f);
  // q_proj rows come back un-permuted: HF row r of head h is GGUF row 2i+j with r = j*2+i.
  const auto q = ck.tensors.at("layers.1.self_attn.q_proj.weight").to_vector<float>();
  const int gguf_rows_of_hf[4] = {0, 2, 1, 3};
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < 4; ++r)
      for (int col = 0; col < 8; ++col)
        EXPECT_EQ(q[(h * 4 + r) * 8 + col], tiny.q_gguf[(h * 4 + gguf_rows_of_hf[r]) * 8 + col]);
  const auto k = ck.tensors.at("layers.0.self_attn.k_proj.weight").to_vector<float>();
  EXPECT_EQ(k[1 * 8], 1200.0f + 2 * 8);  // HF row 1 = GGUF row 2 (one KV head of 4 rows)

  const TokenizerData& t = ck.tokenizer;
  EXPECT_EQ(t.type, "bpe");
  EXPECT_EQ(t.vocab, (std::vector<std::string>{"a", "b", "ab", "<s>", "</s>", "c"}));
  EXPECT_EQ(t.merges, (std::vector<std::string>{"a b"}));
  EXPECT_EQ(t.token_types[3], kTokenControl);
  EXPECT_EQ(t.bos_id, 3);
  EXPECT_EQ(t.eos_id, 4);
  EXPECT_TRUE(t.add_bos);
  EXPECT_EQ(t.pre, "smollm");
}

TEST(GgufModel, UntiedOutputAndBf16Storage) {
  const std::string path = TinyGguf(false).write("tiny_untied.gguf");
  const Checkpoint ck = load_gguf_model(path, DType::BF16);
  EXPECT_FALSE(ck.config.tie_word_embeddings);
  ASSERT_TRUE(ck.tensors.count("lm_head.weight"));
  EXPECT_EQ(ck.tensors.at("lm_head.weight").dtype(), DType::BF16);
  EXPECT_EQ(ck.tensors.at("lm_head.weight").to_vector<float>()[4], 504.0f);  // exact in bf16
}

TEST(GgufModel, Qwen2IsNotPermuted) {
  TinyGguf tiny(true, "qwen2");
  const Checkpoint ck = load_gguf_model(tiny.write("tiny_qwen2.gguf"));
  EXPECT_EQ(ck.config.architecture, "qwen2");
  EXPECT_EQ(ck.tensors.at("layers.1.self_attn.q_proj.weight").to_vector<float>(), tiny.q_gguf);
}

TEST(GgufModel, RefusalsNameFileAndCulprit) {
  auto error_of = [](const TinyGguf& t, const std::string& name) -> std::string {
    const std::string path = t.write(name);
    try {
      load_gguf_model(path);
    } catch (const InputError& e) {
      EXPECT_CONTAINS(e.what(), path);
      return e.what();
    }
    return "accepted";
  };
  {
    TinyGguf t;
    t.b.str("general.architecture", "x");  // duplicate key: refused while parsing
    EXPECT_CONTAINS(error_of(t, "dup_arch.gguf"), "general.architecture");
  }
  {
    TinyGguf t(true, "gemma3");
    EXPECT_CONTAINS(error_of(t, "gemma3.gguf"), "gemma3");
  }
  {
    TinyGguf t;
    t.b.tensors.pop_back();  // blk.1.ffn_down.weight
    EXPECT_CONTAINS(error_of(t, "missing.gguf"), "layers.1.mlp.down_proj.weight");
  }
  {
    TinyGguf t;
    t.b.f32_tensor("blk.0.attn_rot_embd", {4}, {0, 0, 0, 0});
    EXPECT_CONTAINS(error_of(t, "unknown_tensor.gguf"), "blk.0.attn_rot_embd");
  }
  {
    TinyGguf t;
    t.b.tensors[0].ne = {8, 5};  // token_embd rows disagree with the 6-token vocabulary
    t.b.tensors[0].data.resize(8 * 5 * 4);
    EXPECT_CONTAINS(error_of(t, "vocab.gguf"), "tokens");
  }
}

// Issue 15: sizes in the metadata are bounded before anything is built from them (a 2^40 block_count allocated
// ~18 GB), and shape disagreements between the metadata and the tensors are input errors naming the file and the
// key or tensor (exit 2), not internal errors.
TEST(GgufModel, ForgedSizesAndShapesNameFileAndKey) {
  struct Case {
    const char* file;
    std::map<std::string, uint64_t> sizes;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"layers.gguf", {{"block_count", 1ull << 40}}, "llama.block_count"},
      {"hidden.gguf", {{"embedding_length", 1ull << 62}}, "llama.embedding_length"},
      {"ffn.gguf", {{"feed_forward_length", 1ull << 40}}, "llama.feed_forward_length"},
      {"heads.gguf", {{"attention.head_count", 1ull << 20}}, "llama.attention.head_count"},
      {"context.gguf", {{"context_length", 1ull << 40}}, "llama.context_length"},
      {"vocab.gguf", {{"vocab_size", 1ull << 40}}, "llama.vocab_size"},
      // key_length 6 is even and passes the config checks, but q has 8 rows for 2 heads: named by tensor.
      {"key_length.gguf", {{"attention.key_length", 6}}, "blk.0.attn_q.weight"},
      {"layers_3.gguf", {{"block_count", 3}}, "layers.2."},  // a layer the file lacks
  };
  for (const Case& c : cases) {
    const std::string path = TinyGguf(true, "llama", c.sizes).write(c.file);
    try {
      load_gguf_model(path);
      ADD_FAILURE() << c.file << ": accepted";
    } catch (const InputError& e) {
      EXPECT_CONTAINS(e.what(), path);
      EXPECT_CONTAINS(e.what(), c.needle);
    }
  }
}

TEST(GgufModel, NonUtf8TokenIsReportedAgainstTheInputKey) {
  // The last token, "c", becomes a lone UTF-8 continuation byte.
  std::string bytes = TinyGguf().b.build();
  const std::string token = std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8) + "c";
  const size_t at = bytes.find(token);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 8] = static_cast<char>(0x80);
  const std::string path = temp_path("bad_utf8.gguf");
  write_file(path, bytes);
  try {
    load_gguf_model(path);
    FAIL() << "a non-UTF-8 token was accepted";
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), path);
    EXPECT_CONTAINS(e.what(), "tokenizer.ggml.tokens");
    EXPECT_CONTAINS(e.what(), "entry 5");
    EXPECT_EQ(std::string(e.what()).find(".tmp."), std::string::npos);
  }
  // `info` keeps describing the file but reports the tokenizer error instead of dropping it.
  const nlohmann::json d = describe_model_file(path);
  EXPECT_TRUE(d["tokenizer"].is_null());
  EXPECT_CONTAINS(d.value("tokenizer_error", ""), "tokenizer.ggml.tokens");
  EXPECT_CONTAINS(summarize_model_description(d), "tokenizer:  not loadable");
}

TEST(GgufModel, LoadBeyondTheMemoryLimitIsRefusedByName) {
  const std::string path = TinyGguf().write("budget.gguf");
  ::setenv("LINSPEC_MEMORY_LIMIT_MB", "1", 1);
  EXPECT_NO_THROW(load_gguf_model(path));  // a few KiB fit in 1 MiB
  // A model over 1 MiB in f32 does not.
  TinyGguf big(true, "llama", {{"vocab_size", 40000}});
  big.b.tensors[0] = {"token_embd.weight", {8, 40000}, 0, std::string(8 * 40000 * 4, '\0'), std::nullopt};
  const std::string big_path = big.write("budget_big.gguf");
  try {
    load_gguf_model(big_path);
    ADD_FAILURE() << "a load over the memory limit was accepted";
  } catch (const InputError& e) {
    EXPECT_CONTAINS(e.what(), big_path);
    EXPECT_CONTAINS(e.what(), "token_embd.weight");
    EXPECT_CONTAINS(e.what(), "memory");
  }
  ::unsetenv("LINSPEC_MEMORY_LIMIT_MB");
  EXPECT_NO_THROW(load_gguf_model(big_path));
}

}  // namespace
}  // namespace linspec
