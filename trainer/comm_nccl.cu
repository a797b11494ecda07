// NCCL communicator for GPU data parallel: the unique id is created on rank 0 and broadcast over MPI.
// Buffers passed to it are device pointers; collectives run on a dedicated stream.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "core/device.h"
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
    select_local_gpu();  // local_rank mod visible GPUs, the device the model was placed on
    ncclUniqueId id;
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    check(ncclCommInitRank(&comm_, world_, id, rank_), "ncclCommInitRank");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreateWithFlags(&computed_, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&reduced_, cudaEventDisableTiming), "cudaEventCreate");
  }
  ~NcclCommunicator() override {
    cudaStreamSynchronize(stream_);  // nothing in flight when the communicator goes
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
    cudaEventDestroy(computed_);
    cudaEventDestroy(reduced_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string backend() const override { return "nccl"; }
  bool takes_device_memory() const override { return true; }

  void allreduce_sum(float* data, size_t count) override {
    after_compute();
    check(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    hand_back();
  }
  void allreduce_sum(double* data, size_t count) override {
    after_compute();
    check(ncclAllReduce(data, data, count, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce");
    hand_back();
  }
  void reduce_scatter_sum(const float* in, float* out, size_t count) override {
    after_compute();
    check(ncclReduceScatter(in, out, count / world_, ncclFloat32, ncclSum, comm_, stream_), "ncclReduceScatter");
    hand_back();
  }
  void allgather(const float* shard, float* out, size_t count) override {
    after_compute();
    check(ncclAllGather(shard, out, count / world_, ncclFloat32, comm_, stream_), "ncclAllGather");
    hand_back();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    after_compute();
    check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    hand_back();
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  // Ordering without blocking the host: the kernels that produced a buffer run on the default stream, so NCCL's
  // own (non-blocking) stream waits for them; whatever reads the result later (the next backward kernels, the
  // norm, AdamW, a copy to the host) runs on the default stream, which waits for the collective in turn. A bucket
  // reduced from inside backward thus overlaps with the backward kernels of earlier layers.
  void after_compute() {
    check(cudaEventRecord(computed_, cudaStreamLegacy), "cudaEventRecord");
    check(cudaStreamWaitEvent(stream_, computed_, 0), "cudaStreamWaitEvent");
  }
  void hand_back() {
    check(cudaEventRecord(reduced_, stream_), "cudaEventRecord");
    check(cudaStreamWaitEvent(cudaStreamLegacy, reduced_, 0), "cudaStreamWaitEvent");
  }
  int rank_ = 0, world_ = 1;
  ncclComm_t comm_{};
  cudaStream_t stream_{};
  cudaEvent_t computed_{}, reduced_{};
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator() { return std::make_unique<NcclCommunicator>(); }

}  // namespace linspec::trainer
