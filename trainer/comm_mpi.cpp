#include <mpi.h>

#include <cstdlib>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "trainer/comm.h"

namespace linspec::trainer {
namespace {

bool we_initialised = false;

void ensure_mpi() {
  int inited = 0;
  MPI_Initialized(&inited);
  if (inited) return;
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  we_initialised = true;
  std::atexit([] { shutdown_communication(); });
}

// Large buffers are reduced in buckets so no single MPI message exceeds int counts and memory stays flat.
constexpr size_t kBucket = size_t(1) << 22;  // 4M elements (16 MB of f32)

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(float* data, size_t count) override { reduce(data, count, MPI_FLOAT); }
  void allreduce_sum(double* data, size_t count) override { reduce(data, count, MPI_DOUBLE); }

  void reduce_scatter_sum(const float* in, float* out, size_t count) override {
    LINSPEC_CHECK(count % world_ == 0, "reduce_scatter of ", count, " elements over ", world_, " ranks");
    if (world_ == 1) {
      std::copy(in, in + count, out);
      return;
    }
    MPI_Reduce_scatter_block(in, out, static_cast<int>(count / world_), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }

  void allgather(const float* shard, float* out, size_t count) override {
    LINSPEC_CHECK(count % world_ == 0, "allgather of ", count, " elements over ", world_, " ranks");
    if (world_ == 1) {
      std::copy(shard, shard + count, out);
      return;
    }
    MPI_Allgather(shard, static_cast<int>(count / world_), MPI_FLOAT, out, static_cast<int>(count / world_), MPI_FLOAT,
                  MPI_COMM_WORLD);
  }

  void broadcast(void* data, size_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (size_t off = 0; off < bytes; off += kBucket)
      MPI_Bcast(p + off, static_cast<int>(std::min(kBucket, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD);
  }

  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  template <typename T>
  void reduce(T* data, size_t count, MPI_Datatype type) {
    if (world_ == 1) return;
    for (size_t off = 0; off < count; off += kBucket)
      MPI_Allreduce(MPI_IN_PLACE, data + off, static_cast<int>(std::min(kBucket, count - off)), type, MPI_SUM,
                    MPI_COMM_WORLD);
  }
  int rank_ = 0, world_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator();  // trainer/comm_nccl.cu (CUDA builds only)

std::unique_ptr<Communicator> make_communicator(const std::string& backend, Device model_device) {
  ensure_mpi();
  if (backend == "mpi" || (backend == "auto" && model_device != Device::CUDA)) return std::make_unique<MpiCommunicator>();
  if (backend == "nccl" || backend == "auto") {
    require_cuda("distributed.backend: nccl");
    if (model_device != Device::CUDA)
      throw_input_error("distributed.backend: nccl reduces gradients in GPU memory, but the model is on ",
                        device_name(model_device), " (use mpi or auto)");
#ifdef LINSPEC_WITH_CUDA
    return make_nccl_communicator();
#endif
  }
  throw_input_error("distributed.backend: unknown backend '", backend, "' (expected auto, mpi or nccl)");
}

void shutdown_communication() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (we_initialised && !finalized) MPI_Finalize();
}

}  // namespace linspec::trainer
