// Data-parallel gradient synchronisation in flat buckets.
//
// Every trainable parameter's gradient lives in a flat f32 bucket (a few MB each): before a step, each parameter's
// .grad() is set to a view into its bucket, so backward accumulates straight into the buckets (no packing copy)
// across all micro-batches. Buckets are filled in reverse forward order (the order backward completes them) and
// each records the earliest parameter stage it holds (trainer/student.h); during the last micro-batch's backward,
// the Student's stage markers call stage_done(s) and every bucket whose parameters are all final is reduced right
// away, while backward continues with earlier layers. Reduction: allreduce_sum, or with ZeRO-1 reduce_scatter_sum
// into this rank's shard of the bucket. finish() reduces whatever is left (all ranks in the same bucket order) and
// divides by the world size, so the result is the mean gradient over ranks.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "trainer/comm.h"
#include "trainer/student.h"

namespace linspec::trainer {

class GradSync {
 public:
  struct Slot {
    std::string name;
    Tensor param;
    int64_t stage = 0;
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket, elements
  };
  struct Bucket {
    std::vector<size_t> slots;
    int64_t used = 0;       // elements holding gradients
    int64_t padded = 0;     // used rounded up to a multiple of the world size
    int64_t min_stage = 0;  // the bucket is final once backward has passed this stage
    Tensor grad;            // [padded] f32
    Tensor shard;           // ZeRO: [padded / world], this rank's reduced part; else undefined
    bool reduced = false;
  };

  // `stages[i]` is params[i]'s parameter stage; bucket_bytes bounds a bucket unless one tensor is larger.
  GradSync(Communicator& comm, const std::vector<std::pair<std::string, Tensor>>& params,
           const std::vector<int64_t>& stages, bool zero, size_t bucket_bytes = size_t(4) << 20);

  // Zeroes the buckets and points every parameter's gradient at its bucket view.
  void begin_step();
  // True for the last micro-batch of a step: buckets are then reduced from inside backward.
  void set_reduce_in_backward(bool on) { reduce_in_backward_ = on; }
  // The callback for Student::forward_hidden (valid while this object lives).
  const StageDone& stage_done() const { return stage_done_; }
  // Reduces the remaining buckets and divides by the world size. Collective.
  void finish();

  // L2 norm of the mean gradient over every trainable parameter (collective with ZeRO).
  double global_norm();

  // ZeRO: after each rank updated its shards, gathers the new parameter values everywhere. Collective.
  void allgather_params();

  // ZeRO: this rank's part [begin, end) of a bucket's elements.
  std::pair<int64_t, int64_t> shard_range(const Bucket& b) const;

  bool zero() const { return zero_; }
  Communicator& comm() { return comm_; }
  const std::vector<Slot>& slots() const { return slots_; }
  const std::vector<Bucket>& buckets() const { return buckets_; }
  // Buckets reduced inside backward during the last finish() (for tests and logs).
  int reduced_in_backward() const { return reduced_in_backward_; }

 private:
  void reduce(Bucket& b);
  Communicator& comm_;
  bool zero_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  bool reduce_in_backward_ = false;
  int reduced_in_backward_ = 0, reduced_count_ = 0;
  StageDone stage_done_;
};

}  // namespace linspec::trainer
