#include <gtest/gtest.h>

#include "core/rng.h"
#include "core/tensor.h"

using namespace linspec;

TEST(Tensor, ContiguousAllocationIsAligned) {
  Tensor t = Tensor::zeros({3, 5, 7});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{35, 7, 1}));
}

TEST(Tensor, TransposeAndSliceAreViews) {
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[i] = static_cast<float>(i);
  Tensor t = Tensor::from_vector(v, {2, 3, 4});
  Tensor tr = t.transpose(1, 2);
  EXPECT_TRUE(tr.shares_storage_with(t));
  EXPECT_FALSE(tr.is_contiguous());
  Tensor c = tr.contiguous();
  // c[b][j][i] == t[b][i][j]
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(c.data<float>()[b * 12 + j * 3 + i], v[b * 12 + i * 4 + j]);
  Tensor s = t.slice(2, 1, 3);
  EXPECT_TRUE(s.shares_storage_with(t));
  auto sv = s.to_vector<float>();
  ASSERT_EQ(sv.size(), 12u);
  EXPECT_EQ(sv[0], 1.f);
  EXPECT_EQ(sv[1], 2.f);
  EXPECT_EQ(sv[2], 5.f);
}

TEST(Tensor, ReshapeViewWhenContiguous) {
  Tensor t = Tensor::zeros({4, 6});
  Tensor r = t.reshape({2, -1});
  EXPECT_TRUE(r.shares_storage_with(t));
  EXPECT_EQ(r.shape(), (Shape{2, 12}));
  Tensor rt = t.transpose(0, 1).reshape({24});
  EXPECT_FALSE(rt.shares_storage_with(t));
}

TEST(Tensor, Bf16AndF16RoundTrip) {
  // Values exactly representable in both formats survive; others round to nearest even.
  std::vector<float> v = {0.f, 1.f, -2.5f, 65504.f, 6.103515625e-05f, 5.960464477539063e-08f};
  Tensor t = Tensor::from_vector(v, {6});
  auto h = t.to(DType::F16).to(DType::F32).to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(h[i], v[i]) << i;
  auto b = Tensor::from_vector(std::vector<float>{1.f, -2.5f, 3.0f}, {3}).to(DType::BF16).to(DType::F32).to_vector<float>();
  EXPECT_EQ(b[0], 1.f);
  EXPECT_EQ(b[1], -2.5f);
  // 1 + 2^-8 is halfway between two bf16 values: ties to even -> 1.0
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 2048)), 1.0f);
}

TEST(Tensor, PeakMemoryAccounting) {
  reset_peak_memory(Device::CPU);
  const int64_t before = memory_stats(Device::CPU).current_bytes;
  {
    Tensor big = Tensor::empty({1 << 20});  // 4 MiB
    EXPECT_GE(memory_stats(Device::CPU).current_bytes - before, 4 << 20);
  }
  EXPECT_EQ(memory_stats(Device::CPU).current_bytes, before);
  EXPECT_GE(memory_stats(Device::CPU).peak_bytes - before, 4 << 20);
}

TEST(Philox, KnownAnswer) {
  // Random123 known-answer vectors for philox4x32-10.
  auto z = philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(z[0], 0x6627e8d5u);
  EXPECT_EQ(z[1], 0xe169c58du);
  EXPECT_EQ(z[2], 0xbc57ac4cu);
  EXPECT_EQ(z[3], 0x9b00dbd8u);
  auto f = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(f[0], 0x408f276du);
  EXPECT_EQ(f[1], 0x41c83b0eu);
  EXPECT_EQ(f[2], 0xa20bc7c6u);
  EXPECT_EQ(f[3], 0x6d5451fdu);
}

TEST(Philox, ResumeFromSavedCounter) {
  Philox a(42);
  for (int i = 0; i < 13; ++i) a.next_u32();
  Philox b(0);
  b.set_state(a.seed(), a.counter());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.next_u32(), b.next_u32());
  Philox c(42, 13 + 50);
  EXPECT_EQ(a.normal(), c.normal());
}

TEST(Philox, NormalMoments) {
  Philox r(7);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double x = r.normal();
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
}
