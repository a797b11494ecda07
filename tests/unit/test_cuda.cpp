// CUDA smoke tests. Without a GPU these skip with a message (the one skip the project allows);
// without the CUDA backend, asking for CUDA must be a clear InputError.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda_runtime.h"
#include "kernels/matmul.h"

using namespace linspec;

#define REQUIRE_GPU()                                                                     \
  do {                                                                                    \
    if (!kernels::cuda::built_with_cuda()) GTEST_SKIP() << "built without CUDA";          \
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU test not run here"; \
  } while (0)

TEST(Cuda, RequestingCudaWithoutDeviceIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; covered by the device tests";
  try {
    Tensor::empty({4}, DType::F32, Device::CUDA);
    FAIL() << "allocation on CUDA should have been refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
}

TEST(Cuda, TensorRoundTripAndAxpy) {
  REQUIRE_GPU();
  Philox rng(3);
  std::vector<float> x(1000), y(1000);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  for (auto& v : y) v = static_cast<float>(rng.normal());
  Tensor gx = Tensor::from_vector(x, {1000}).to(Device::CUDA);
  Tensor gy = Tensor::from_vector(y, {1000}).to(Device::CUDA);
  kernels::cuda::axpy_f32(0.5f, gx.data<float>(), gy.data<float>(), 1000);
  auto out = gy.to(Device::CPU).to_vector<float>();
  for (int i = 0; i < 1000; ++i) EXPECT_FLOAT_EQ(out[i], y[i] + 0.5f * x[i]);
}

TEST(Cuda, CublasGemmMatchesCpu) {
  REQUIRE_GPU();
  const int m = 33, n = 17, k = 45;
  Philox rng(5);
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (auto& v : a) v = static_cast<float>(rng.normal());
  for (auto& v : b) v = static_cast<float>(rng.normal());
  kernels::cpu::gemm_f32({1, m, n, k}, a.data(), b.data(), c.data());
  Tensor ga = Tensor::from_vector(a, {m, k}).to(Device::CUDA), gb = Tensor::from_vector(b, {k, n}).to(Device::CUDA);
  Tensor gc = Tensor::empty({m, n}, DType::F32, Device::CUDA);
  kernels::cuda::gemm_f32(ga.data<float>(), gb.data<float>(), gc.data<float>(), m, n, k);
  auto out = gc.to(Device::CPU).to_vector<float>();
  for (int i = 0; i < m * n; ++i) EXPECT_NEAR(out[i], c[i], 1e-4 * (1 + std::fabs(c[i])));
}
