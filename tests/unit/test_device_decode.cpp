// Decoding with the model and its decode states on a second device (Device::TestHost, host memory behind a distinct
// device that counts every copy to or from the CPU): prefill, incremental decode, tree verification and advance give
// the CPU model's logits, greedy generation the same tokens, and a generated token costs one copy each way (its id
// in, its logits row out for sampling) however many layers the model has.
#include <gtest/gtest.h>

#include "model/generation.h"
#include "tests/support/test_host_device.h"
#include "tests/unit/llama_test_util.h"

namespace linspec {
namespace {

LlamaModel decode_model(const std::string& preset, Device device, int64_t layers) {
  testing::install_test_host_device();
  ModelConfig c = testing::tiny_llama_config();
  c.num_layers = layers;
  LlamaOptions o;
  o.requires_grad = false;
  o.device = device;
  LlamaModel m = LlamaModel::random(c, 21, o);
  if (preset != "softmax") {
    AttentionSpec spec;
    spec.preset = preset;
    spec.options = {{"group_size", "4"}};
    m.set_attention_spec(spec);
  }
  return m;
}

class DeviceDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(DeviceDecode, LogitsAndTreesMatchTheCpuModel) {
  const LlamaModel cpu = decode_model(GetParam(), Device::CPU, 2);
  const LlamaModel dev = decode_model(GetParam(), Device::TestHost, 2);
  const Tensor prompt = testing::random_ids(1, 9, cpu.config().vocab_size, 4);
  DecodeState a = cpu.new_decode_state(1, 64), b = dev.new_decode_state(1, 64);
  EXPECT_LT(testing::max_rel_err(dev.decode(b, prompt).to(Device::CPU), cpu.decode(a, prompt)), 1e-6);
  for (int32_t t : {3, 17, 40}) {
    const Tensor id = Tensor::from_vector(std::vector<int32_t>{t}, {1, 1});
    const Tensor got = dev.decode(b, id);
    EXPECT_EQ(got.device(), Device::TestHost);
    EXPECT_LT(testing::max_rel_err(got.to(Device::CPU), cpu.decode(a, id)), 1e-6) << "token " << t;
  }
  const std::vector<int32_t> parent{-1, 0, 0, 1};
  const Tensor nodes = Tensor::from_vector(std::vector<int32_t>{5, 6, 7, 8}, {4});
  EXPECT_LT(testing::max_rel_err(dev.verify_tree(b, nodes, parent).to(Device::CPU), cpu.verify_tree(a, nodes, parent)),
            1e-6);
  cpu.advance(a, nodes, parent, {0, 1});
  dev.advance(b, nodes, parent, {0, 1});
  const Tensor id = Tensor::from_vector(std::vector<int32_t>{9}, {1, 1});
  EXPECT_LT(testing::max_rel_err(dev.decode(b, id).to(Device::CPU), cpu.decode(a, id)), 1e-6);
}

TEST_P(DeviceDecode, GreedyGenerationCopiesOneIdInAndOneRowOutPerToken) {
  GenerationConfig g;
  g.max_new_tokens = 6;
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5};
  const GenerationResult ref = generate(decode_model(GetParam(), Device::CPU, 2), prompt, g);
  std::vector<testing::CrossDeviceCopies> copies;
  for (int64_t layers : {1, 3}) {
    const LlamaModel dev = decode_model(GetParam(), Device::TestHost, layers);
    testing::reset_cross_device_copies();
    const GenerationResult got = generate(dev, prompt, g);
    copies.push_back(testing::cross_device_copies());
    if (layers == 3) continue;
    const LlamaModel two = decode_model(GetParam(), Device::TestHost, 2);
    EXPECT_EQ(generate(two, prompt, g).tokens, ref.tokens);
  }
  for (const auto& c : copies) {
    EXPECT_EQ(c.to_host, g.max_new_tokens);  // the logits row each token is sampled from
    EXPECT_LE(c.from_host, g.max_new_tokens);  // the prompt, then each new token but the last
    EXPECT_GE(c.from_host, g.max_new_tokens - 1);
  }
  EXPECT_EQ(copies[0].from_host, copies[1].from_host);
  EXPECT_EQ(copies[0].to_host_bytes, copies[1].to_host_bytes);
}

INSTANTIATE_TEST_SUITE_P(Presets, DeviceDecode, ::testing::Values("softmax", "aug", "local+conv"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '+') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace linspec
