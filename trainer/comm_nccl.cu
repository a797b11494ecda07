// NCCL communicator for GPU data parallel: the unique id is created on rank 0 and broadcast over MPI.
// Buffers passed to it are device pointers; collectives run on a dedicated stream.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "trainer/comm.h"

namespace linspec::trainer {
namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string("NCCL error in ") + what + ": " + ncclGetErrorString(r));
}
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    int devices = 0;
    check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    check(cudaSetDevice(rank_ % devices), "cudaSetDevice");
    ncclUniqueId id;
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    check(ncclCommInitRank(&comm_, world_, id, rank_), "ncclCommInitRank");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string backend() const override { return "nccl"; }

  void allreduce_sum(float* data, size_t count) override {
    check(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    sync();
  }
  void allreduce_sum(double* data, size_t count) override {
    check(ncclAllReduce(data, data, count, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce");
    sync();
  }
  void reduce_scatter_sum(const float* in, float* out, size_t count) override {
    check(ncclReduceScatter(in, out, count / world_, ncclFloat32, ncclSum, comm_, stream_), "ncclReduceScatter");
    sync();
  }
  void allgather(const float* shard, float* out, size_t count) override {
    check(ncclAllGather(shard, out, count / world_, ncclFloat32, comm_, stream_), "ncclAllGather");
    sync();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    sync();
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  void sync() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
  int rank_ = 0, world_ = 1;
  ncclComm_t comm_{};
  cudaStream_t stream_{};
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator() { return std::make_unique<NcclCommunicator>(); }

}  // namespace linspec::trainer
