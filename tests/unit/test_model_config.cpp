// ModelConfig: RoPE inverse frequencies against HF transformers' rope init functions (golden from
// tests/reference/make_rope_inv_freq_golden.py), JSON round trip and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"

namespace linspec {
namespace {

using nlohmann::json;

ModelConfig base_config() {
  ModelConfig c;
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 4;
  c.max_position_embeddings = 131072;
  return c;
}

int32_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(ia - ib);
}

TEST(RopeInvFreq, MatchesTransformers) {
  std::ifstream in(std::string(LINSPEC_SOURCE_DIR) + "/tests/reference/golden/rope_inv_freq.json");
  ASSERT_TRUE(in.good());
  const json golden = json::parse(in);
  int exact = 0, total = 0;
  for (const auto& c : golden["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    ModelConfig cfg = base_config();
    cfg.head_dim = c["head_dim"].get<int64_t>();
    cfg.rope_theta = c["rope_theta"].get<double>();
    const json& rs = c["rope_scaling"];
    const std::string type = rs["rope_type"].get<std::string>();
    cfg.rope_scaling.type = type;
    if (type != "none") cfg.rope_scaling.factor = rs["factor"].get<double>();
    if (type == "llama3") {
      cfg.rope_scaling.low_freq_factor = rs["low_freq_factor"].get<double>();
      cfg.rope_scaling.high_freq_factor = rs["high_freq_factor"].get<double>();
      cfg.rope_scaling.original_max_position_embeddings = rs["original_max_position_embeddings"].get<int64_t>();
    }
    const auto want = c["inv_freq"].get<std::vector<float>>();
    const auto got = rope_inv_freq(cfg);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ++total;
      exact += got[i] == want[i];
      EXPECT_LE(ulp_distance(got[i], want[i]), 1) << "i=" << i << ": " << got[i] << " vs " << want[i];
    }
  }
  // Same f32 operations in the same order: bit-exact (a 1-ulp slip would point at pow rounding).
  EXPECT_EQ(exact, total) << exact << " of " << total << " bit-exact";
}

TEST(ModelConfigJson, RoundTripAndErrors) {
  ModelConfig c = base_config();
  c.rope_scaling = {"linear", 2.0, 1.0, 4.0, 0};
  c.eos_token_ids = {2, 3};
  c.attention_bias = true;
  const json j = c;
  EXPECT_EQ(json(model_config_from_json(j, "x")), j);
  json missing = j;
  missing.erase("num_heads");
  try {
    model_config_from_json(missing, "ckpt.h5 (/config model)");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.h5"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("num_heads"), std::string::npos);
  }
  json odd = j;
  odd["head_dim"] = 5;
  EXPECT_THROW(model_config_from_json(odd, "x"), InputError);
  json bad_rope = j;
  bad_rope["rope_scaling"]["type"] = "dynamic";
  EXPECT_THROW(model_config_from_json(bad_rope, "x"), InputError);
}

}  // namespace
}  // namespace linspec
