// `linspec export`'s library side on a tiny snapshot carrying LoRA adapters, draft heads, a draft model, a feature
// draft and optimizer / trainer groups:
//  - the serving checkpoint keeps model, tokenizer, /draft/heads, /draft/model and /draft/eagle (bytes unchanged)
//    and drops /optimizer and /trainer; merged weights equal W + α/r·B A computed here with plain double loops;
//  - greedy speculative decoding (heads, draft and eagle) on the export equals AR decoding of its model (lossless);
//  - a corrupt draft tensor is reported by file and tensor and leaves no output;
//  - safetensors writer and HF config.json go back through the independent readers (SafetensorsFile,
//    model_config_from_hf_json, load_hf_model) unchanged; a linear-attention model is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "model/draft_heads.h"
#include "model/draft_model.h"
#include "model/feature_draft.h"
#include "model/formats/hf_export.h"
#include "model/formats/safetensors.h"
#include "model/formats/safetensors_writer.h"
#include "model/generation.h"
#include "model/hdf5_util.h"
#include "model/llama_tensors.h"
#include "model/lora.h"
#include "serve/serving_checkpoint.h"
#include "serve/speculative_loader.h"
#include "speculative_test_util.h"

namespace linspec {
namespace {

namespace fs = std::filesystem;

TokenizerData letter_tokenizer(int64_t vocab) {
  TokenizerData d;
  d.type = "bpe";
  d.pre = "gpt2";
  for (int64_t i = 0; i < vocab; ++i) d.vocab.push_back(std::string(1, static_cast<char>('A' + i)));
  d.eos_id = vocab - 1;
  return d;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Export : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("linspec_export_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = std::make_unique<LlamaModel>(testing::speculative_tiny_model("softmax", 5));
    LoraConfig lc;
    lc.rank = 2, lc.alpha = 6, lc.targets = {"q", "v", "up"};
    lora_ = std::make_unique<LoraSet>(model_->config(), lc, 9);
    Philox rng(3);
    for (const auto& [name, t] : lora_->named_parameters()) testing::fill_normal(t, rng, 0.3);  // B is 0 at init

    snap_ck_.config = model_->config();
    snap_ck_.tensors = model_->checkpoint_tensors();
    for (const auto& [name, t] : lora_->named_parameters()) snap_ck_.tensors[linspec_tensor_name(name)] = t.detach();
    snap_ck_.extra_attrs["lora"] = lora_->attrs_json();
    snap_ck_.tokenizer = letter_tokenizer(model_->config().vocab_size);
    heads_ = std::make_unique<DraftHeads>(DraftHeads::init_from(*model_, {}, false));
    for (const auto& [name, t] : heads_->tensors())
      if (name.find("/res") != std::string::npos) testing::fill_normal(t, rng, 0.3);
    LlamaOptions o;
    o.requires_grad = false;
    draft_ = std::make_unique<LlamaModel>(make_draft_model(*model_, 1, o));
    eagle_ = std::make_unique<FeatureDraft>(FeatureDraft::init_from(*model_, {4, 1, 9, 2, 6, 3, 5}, false));
    snap_ = (dir_ / "snapshot-3.h5").string();
    write_hdf5_atomically(snap_, [&](H5Handle f) {
      write_checkpoint_contents(f, snap_ck_);
      write_draft_heads(f, *heads_);
      write_draft_model(f, *draft_);
      write_feature_draft(f, *eagle_);
      write_tensor_group(f, "optimizer", {{"m/embed_tokens.weight", Tensor::zeros({3})}});
      write_tensor_group(f, "trainer", {{"rng", Tensor::zeros({1, 2}, DType::I64)}});
    });
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::unique_ptr<LlamaModel> model_, draft_;
  std::unique_ptr<LoraSet> lora_;
  std::unique_ptr<DraftHeads> heads_;
  std::unique_ptr<FeatureDraft> eagle_;
  Checkpoint snap_ck_;
  std::string snap_;
};

TEST_F(Export, ServingCheckpointMergesLoraKeepsDraftsDropsTrainerState) {
  int merged = 0;
  const Checkpoint ck = load_serving_checkpoint(snap_, &merged);
  EXPECT_EQ(merged, 3 * model_->config().num_layers);
  EXPECT_EQ(ck.extra_attrs.count("lora"), 0u);
  const std::string out = (dir_ / "serve.h5").string();
  write_serving_checkpoint(ck, snap_, out);

  with_hdf5_file(out, [&](H5Handle f) {
    for (const char* kept : {"config", "model", "tokenizer", "draft/heads", "draft/model", "draft/eagle"})
      EXPECT_TRUE(h5::has_link(f, kept)) << kept;
    for (const char* dropped : {"optimizer", "trainer"}) EXPECT_FALSE(h5::has_link(f, dropped)) << dropped;
  });
  const Checkpoint back = load_checkpoint(out);
  for (const auto& [name, t] : back.tensors) EXPECT_FALSE(is_lora_tensor_name(name)) << name;
  EXPECT_EQ(back.tensors.size(), model_->checkpoint_tensors().size());

  // W' = W + (α/r)·B A, in double, against the stored f32 result.
  const double scale = lora_->config().scale();
  for (int64_t l = 0; l < model_->config().num_layers; ++l)
    for (const char* target : {"q", "v", "up"}) {
      const LoraAdapter* a = lora_->find(l, lora_target_from_name(target));
      ASSERT_NE(a, nullptr);
      const std::string w = linspec_tensor_name(lora_projection_name(l, lora_target_from_name(target))) + ".weight";
      const Tensor& base = snap_ck_.tensors.at(w);
      const Tensor& got = back.tensors.at(w);
      const int64_t rows = base.size(0), cols = base.size(1), r = a->A().size(0);
      double worst = 0, change = 0;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          double delta = 0;
          for (int64_t k = 0; k < r; ++k)
            delta += static_cast<double>(a->B().data<float>()[i * r + k]) * a->A().data<float>()[k * cols + j];
          const double want = base.data<float>()[i * cols + j] + scale * delta;
          worst = std::max(worst, std::abs(got.data<float>()[i * cols + j] - want));
          change = std::max(change, std::abs(scale * delta));
        }
      EXPECT_LT(worst, 1e-6) << w;
      EXPECT_GT(change, 1e-2) << w << ": the adapter does not change the weight; the test cannot see a merge";
    }
  // Unadapted tensors are untouched, bit for bit.
  for (const char* name : {"embed_tokens.weight", "layers.0.self_attn.k_proj.weight", "layers.1.mlp.down_proj.weight"})
    EXPECT_EQ(tensor_xxh64(back.tensors.at(name)), tensor_xxh64(snap_ck_.tensors.at(name))) << name;

  // The draft groups are copied as stored.
  const LlamaModel target = LlamaModel::from_tensors(back.config, back.tensors, {}, out);
  const auto heads_back = load_draft_heads(out, target).tensors();
  for (const auto& [name, t] : heads_->tensors()) EXPECT_EQ(tensor_xxh64(heads_back.at(name)), tensor_xxh64(t)) << name;
  for (const auto& [name, t] : load_draft_model(out).checkpoint_tensors())
    EXPECT_EQ(tensor_xxh64(t), tensor_xxh64(draft_->checkpoint_tensors().at(name))) << name;
  const auto eagle_back = load_feature_draft(out, target).tensors();
  for (const auto& [name, t] : eagle_->tensors()) EXPECT_EQ(tensor_xxh64(eagle_back.at(name)), tensor_xxh64(t)) << name;
}

TEST_F(Export, SpeculativeDecodingOnTheExportIsLossless) {
  const std::string out = (dir_ / "serve.h5").string();
  write_serving_checkpoint(load_serving_checkpoint(snap_), snap_, out);
  const Checkpoint back = load_checkpoint(out);
  const LlamaModel target = LlamaModel::from_tensors(back.config, back.tensors, {}, out);
  GenerationConfig g;
  g.max_new_tokens = 16;
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  const auto ar = generate(target, prompt, g).tokens;
  ASSERT_EQ(ar.size(), 16u);
  for (const char* mode : {"heads", "draft", "eagle"}) {
    SpeculativeSetup setup;
    setup.mode = mode;
    const LoadedSpeculator spec = load_speculator(target, out, setup);
    EXPECT_EQ(spec.speculator->generate(prompt, g).tokens, ar) << mode;
  }
}

TEST_F(Export, CorruptDraftTensorIsNamedAndNothingIsWritten) {
  // Flip one byte of a draft head's residual weight (its bytes are unique in the file: random values).
  const Tensor w = heads_->tensors().at("head1/res0.weight");
  const std::string probe(static_cast<const char*>(w.raw_data()), 64);
  std::string bytes = read_bytes(snap_);
  const size_t at = bytes.find(probe);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 10] ^= 0x10;
  std::ofstream(snap_, std::ios::binary | std::ios::trunc) << bytes;

  const std::string out = (dir_ / "serve.h5").string();
  try {
    write_serving_checkpoint(load_serving_checkpoint(snap_), snap_, out);
    FAIL() << "a corrupt /draft/heads tensor was exported";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(snap_), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("draft/heads/head1/res0.weight"), std::string::npos) << e.what();
  }
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().filename().string().find("serve.h5"), std::string::npos) << entry.path();
}

TEST(SafetensorsWriter, ReadsBackThroughSafetensorsFile) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("linspec_st_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "t.safetensors").string();
  Philox rng(1);
  Tensor a = Tensor::empty({3, 5}), b = Tensor::empty({7}), c = Tensor::empty({2, 3});
  for (const Tensor* t : {&a, &b, &c}) testing::fill_normal(*t, rng, 1.0);
  const std::map<std::string, Tensor> tensors = {{"a", a}, {"b.bf16", b.to(DType::BF16)}, {"c", c}};
  write_safetensors(path, tensors, {{"format", "pt"}});
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors().front().offset % 8, 0u) << "the data section should start 8-byte aligned";
  for (const auto& [name, t] : tensors) {
    const SafetensorsTensorInfo* info = f.find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->shape, t.shape());
    EXPECT_EQ(info->dtype, t.dtype() == DType::BF16 ? "BF16" : "F32");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.bytes(*info)), info->nbytes),
              std::string(static_cast<const char*>(t.raw_data()), t.nbytes()))
        << name;
  }
  fs::remove_all(dir);
}

TEST(HfExport, ConfigJsonRoundTripsThroughTheHfReader) {
  ModelConfig c = testing::speculative_tiny_config(40);
  c.tie_word_embeddings = false;
  c.rope_theta = 5e5;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  c.bos_token_id = 1;
  c.eos_token_ids = {2, 39};
  c.attention_bias = c.attention_out_bias = true;
  const nlohmann::json j = hf_config_json(c, DType::BF16);
  EXPECT_EQ(j["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(j["torch_dtype"], "bfloat16");
  const ModelConfig back = model_config_from_hf_json(j, "config.json");
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(c));

  ModelConfig q = testing::speculative_tiny_config(40);
  q.architecture = "qwen2";
  q.attention_bias = true;
  EXPECT_EQ(nlohmann::json(model_config_from_hf_json(hf_config_json(q, DType::F32), "config.json")), nlohmann::json(q));
}

TEST(HfExport, DirectoryLoadsBackAndLinearModelsAreRefused) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("linspec_hfx_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const LlamaModel m = testing::speculative_tiny_model("softmax", 11);
  Checkpoint ck;
  ck.config = m.config();
  ck.tensors = m.checkpoint_tensors();
  const std::string hf = (dir / "hf").string();
  write_hf_directory(ck, hf, DType::F32, "test");
  EXPECT_THROW(write_hf_directory(ck, hf, DType::F32, "test"), InputError);  // exists, no overwrite
  const HfWeights w = open_hf_weights(hf);
  EXPECT_TRUE(w.tensors.count("model.layers.1.self_attn.q_proj.weight"));
  EXPECT_EQ(w.tensors.size(), ck.tensors.size());
  EXPECT_EQ(nlohmann::json(model_config_from_hf_file(hf + "/config.json")), nlohmann::json(ck.config));
  for (const auto& [hf_name, loc] : w.tensors)
    EXPECT_EQ(tensor_xxh64(loc.first->load(*loc.second, DType::F32)), tensor_xxh64(ck.tensors.at(linspec_tensor_name(hf_name))))
        << hf_name;

  const LlamaModel lin = testing::speculative_tiny_model("aug", 11);
  Checkpoint lck;
  lck.config = lin.config();
  lck.tensors = lin.checkpoint_tensors();
  try {
    write_hf_directory(lck, (dir / "lin").string(), DType::F32, "lin.h5");
    FAIL() << "a linear-attention model was written as an HF directory";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find("lin.h5") != std::string::npos && msg.find("linear") != std::string::npos) << msg;
  }
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir)) entries += entry.path().filename() != "hf";
  EXPECT_EQ(entries, 0u) << "the refused export left something behind";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace linspec
