// A single-process Communicator (world 1) for testing collective helpers without MPI.
#pragma once
#include <algorithm>

#include "trainer/comm.h"

namespace linspec::testing {

class SingleRankCommunicator final : public trainer::Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string backend() const override { return "single"; }
  void allreduce_sum(float*, size_t) override { ++collectives; }
  void allreduce_sum(double*, size_t) override { ++collectives; }
  void reduce_scatter_sum(const float* in, float* out, size_t count) override {
    ++collectives;
    std::copy(in, in + count, out);
  }
  void allgather(const float* shard, float* out, size_t count) override {
    ++collectives;
    std::copy(shard, shard + count, out);
  }
  void broadcast(void*, size_t, int) override { ++collectives; }
  void barrier() override { ++collectives; }
  int collectives = 0;  // calls made, so tests can see a helper really went through the communicator
};

}  // namespace linspec::testing
