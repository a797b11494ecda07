#include "trainer/grad_sync.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/error.h"
#include "model/op_profile.h"

namespace linspec::trainer {
namespace {

// The first n elements of an f32 bucket, through its device's elementwise kernels: t *= s, and Σ t².
void scale_in_place(const Tensor& t, int64_t n, float s) {
  float* p = t.device_data<float>();
  backend(t.device()).f32.elementwise.scale(p, s, p, n);
}
double sum_squares(const Tensor& t, int64_t n) {
  return backend(t.device()).f32.elementwise.sum_squares(t.device_data<float>(), n);
}

// Runs a collective on f32 buffers where the communicator can reach them: in place when it takes device memory
// (NCCL) or the device's memory is host memory (MPI on the CPU); otherwise through host copies (MPI with a GPU
// model), written back afterwards.
void on_comm_buffers(Communicator& comm, std::vector<Tensor> buffers, const std::function<void(std::vector<float*>)>& fn) {
  const bool direct = buffers.empty() || comm.takes_device_memory() || backend(buffers[0].device()).host_addressable;
  std::vector<Tensor> staged = buffers;
  if (!direct)
    for (Tensor& t : staged) t = t.to(Device::CPU);
  std::vector<float*> ptrs;
  for (Tensor& t : staged) ptrs.push_back(t.device_data<float>());
  fn(ptrs);
  if (!direct)
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_from(staged[i]);
}

}  // namespace

GradSync::GradSync(Communicator& comm, const std::vector<std::pair<std::string, Tensor>>& params,
                   const std::vector<int64_t>& stages, bool zero, size_t bucket_bytes)
    : comm_(comm), zero_(zero) {
  LINSPEC_CHECK(params.size() == stages.size(), "GradSync: ", params.size(), " params but ", stages.size(), " stages");
  // Reverse forward order: the last stage's gradients are final first.
  std::vector<size_t> order(params.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return stages[a] != stages[b] ? stages[a] > stages[b] : a > b;
  });
  const int64_t cap = static_cast<int64_t>(bucket_bytes / sizeof(float));
  const Device device = params.empty() ? Device::CPU : params[0].second.device();
  const int64_t world = comm.world();
  for (size_t i : order) {
    const Tensor& p = params[i].second;
    LINSPEC_CHECK(p.dtype() == DType::F32 && p.is_contiguous() && p.requires_grad(), "GradSync: ", params[i].first,
                  " must be a contiguous f32 tensor that requires grad");
    LINSPEC_CHECK(p.device() == device, "GradSync: ", params[i].first, " is on ", device_name(p.device()),
                  ", the other parameters on ", device_name(device));
    if (buckets_.empty() || (buckets_.back().used > 0 && buckets_.back().used + p.numel() > cap)) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    if (b.slots.empty()) b.min_stage = stages[i];
    b.min_stage = std::min(b.min_stage, stages[i]);
    slots_.push_back({params[i].first, p, stages[i], buckets_.size() - 1, b.used});
    b.slots.push_back(slots_.size() - 1);
    b.used += p.numel();
  }
  for (Bucket& b : buckets_) {
    b.padded = (b.used + world - 1) / world * world;
    b.grad = Tensor::zeros({b.padded}, DType::F32, device);  // gradients stay on the parameters' device
    if (zero_) b.shard = Tensor::zeros({b.padded / world}, DType::F32, device);
  }
  stage_done_ = [this](int64_t stage) {
    if (!reduce_in_backward_) return;
    // Buckets are in descending stage order, so the final ones form a prefix.
    for (Bucket& b : buckets_) {
      if (b.reduced) continue;
      if (b.min_stage < stage) break;
      reduce(b);
      ++reduced_in_backward_;
    }
  };
}

std::pair<int64_t, int64_t> GradSync::shard_range(const Bucket& b) const {
  const int64_t n = b.padded / comm_.world();
  return {n * comm_.rank(), n * (comm_.rank() + 1)};
}

void GradSync::begin_step() {
  // No zeroing pass: each slot's first gradient of the step overwrites its range (AutogradMeta::grad_stale), and
  // a slot that got none is zeroed just before its bucket is reduced. The padding is zero from construction.
  for (Bucket& b : buckets_) b.reduced = false;
  reduced_in_backward_ = 0;
  for (Slot& s : slots_) {
    const Bucket& b = buckets_[s.bucket];
    AutogradMeta& meta = *s.param.autograd_meta();
    meta.grad = b.grad.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.shape());
    meta.grad_stale = true;
  }
}

void GradSync::reduce(Bucket& b) {
  for (size_t si : b.slots) {  // parameters the step's backward never reached have no gradient: zero
    AutogradMeta& meta = *slots_[si].param.autograd_meta();
    if (meta.grad_stale) meta.grad.zero(), meta.grad_stale = false;
  }
  const size_t n = static_cast<size_t>(b.padded);
  profiled_phase("comm.grad_reduce", true, [&] {
    if (zero_)
      on_comm_buffers(comm_, {b.grad, b.shard},
                      [&](std::vector<float*> p) { comm_.reduce_scatter_sum(p[0], p[1], n); });
    else if (comm_.world() > 1)
      on_comm_buffers(comm_, {b.grad}, [&](std::vector<float*> p) { comm_.allreduce_sum(p[0], n); });
  });
  b.reduced = true;
}

void GradSync::finish() {
  for (Bucket& b : buckets_)
    if (!b.reduced) reduce(b);
  const float inv = 1.0f / static_cast<float>(comm_.world());
  if (comm_.world() > 1)
    for (Bucket& b : buckets_) {
      Tensor& t = zero_ ? b.shard : b.grad;
      scale_in_place(t, t.numel(), inv);
    }
}

double GradSync::global_norm() {
  double sq = 0;
  for (const Bucket& b : buckets_)
    sq += zero_ ? sum_squares(b.shard, b.shard.numel()) : sum_squares(b.grad, b.used);
  if (zero_) comm_.allreduce_sum(&sq, 1);
  return std::sqrt(sq);
}

void GradSync::allgather_params() {
  LINSPEC_CHECK(zero_, "allgather_params is for ZeRO-1");
  for (Bucket& b : buckets_) {
    const auto [lo, hi] = shard_range(b);
    Tensor mine = Tensor::zeros({hi - lo}, DType::F32, b.grad.device());
    Tensor all = Tensor::empty({b.padded}, DType::F32, b.grad.device());
    auto flat = [](const Slot& s) { return s.param.view({s.param.numel()}); };
    for (size_t si : b.slots) {
      const Slot& s = slots_[si];
      const int64_t a = std::max(lo, s.offset), e = std::min(hi, s.offset + s.param.numel());
      if (a < e) mine.slice(0, a - lo, e - lo).copy_from(flat(s).slice(0, a - s.offset, e - s.offset));
    }
    profiled_phase("comm.param_allgather", false, [&] {
      on_comm_buffers(comm_, {mine, all},
                      [&](std::vector<float*> p) { comm_.allgather(p[0], p[1], static_cast<size_t>(b.padded)); });
    });
    for (size_t si : b.slots) {
      const Slot& s = slots_[si];
      flat(s).copy_from(all.slice(0, s.offset, s.offset + s.param.numel()));
    }
  }
}

}  // namespace linspec::trainer
