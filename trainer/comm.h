// Data-parallel communication. Rank and world size come from MPI (mpirun, srun with PMIx, or a
// singleton run); gradients are all-reduced in flat buckets. The CUDA backend uses NCCL with its unique
// id broadcast over MPI (trainer/comm_nccl.cu).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"

namespace linspec::trainer {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string backend() const = 0;
  // True when the collectives take pointers into GPU memory (NCCL); false: host-addressable memory only (MPI).
  virtual bool takes_device_memory() const { return false; }
  // In-place sum across ranks.
  virtual void allreduce_sum(float* data, size_t count) = 0;
  virtual void allreduce_sum(double* data, size_t count) = 0;
  // Sum-reduce then keep this rank's shard: out[count/world] (ZeRO-1); count divisible by world.
  virtual void reduce_scatter_sum(const float* in, float* out, size_t count) = 0;
  // Gathers every rank's shard (count/world each) into out[count].
  virtual void allgather(const float* shard, float* out, size_t count) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

// Initialises MPI once per process (idempotent) and returns the world communicator.
// backend: "auto" | "mpi" | "nccl" (nccl needs the CUDA build and a GPU: InputError otherwise). "auto" follows where
// the gradients live: NCCL when the model is on CUDA, MPI otherwise (a visible GPU alone does not make it NCCL).
std::unique_ptr<Communicator> make_communicator(const std::string& backend = "auto",
                                                Device model_device = Device::CPU);
// Finalises MPI at exit if this process initialised it.
void shutdown_communication();

}  // namespace linspec::trainer
