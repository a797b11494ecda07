// CUDA smoke tests. Without a GPU these skip with a message (the one skip the project allows);
// without the CUDA backend, asking for CUDA must be a clear InputError.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "core/tensor.h"
#include "core/ops.h"
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

TEST(Cuda, TensorRoundTripAndDeviceOps) {
  REQUIRE_GPU();
  Philox rng(3);
  std::vector<float> x(1000), y(1000);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  for (auto& v : y) v = static_cast<float>(rng.normal());
  Tensor gx = Tensor::from_vector(x, {1000}).to(Device::CUDA);
  Tensor gy = Tensor::from_vector(y, {1000}).to(Device::CUDA);
  Tensor sum = ops::add(gy, ops::scale(gx, 0.5));  // dispatches to the CUDA backend: the operands live there
  EXPECT_EQ(sum.device(), Device::CUDA);
  auto out = sum.to(Device::CPU).to_vector<float>();
  for (int i = 0; i < 1000; ++i) EXPECT_FLOAT_EQ(out[i], y[i] + 0.5f * x[i]);
}
