// Multi-tensor AdamW on the GPU (see kernels/adamw.h): the tensor list and a table of equal-size work chunks are
// copied to the device once per call, then one block per chunk updates p, m, v in a single fused pass.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

constexpr int64_t kChunk = 1 << 16;

struct WorkItem {
  int64_t tensor, begin, end;
};

__global__ void adamw_kernel(const AdamWTensor* tensors, const WorkItem* work) {
  const WorkItem w = work[blockIdx.x];
  const AdamWTensor t = tensors[w.tensor];
  const AdamWCoeffs c = t.c;
  for (int64_t i = w.begin + threadIdx.x; i < w.end; i += blockDim.x) {
    const float g = t.grad[i] * c.grad_scale;
    const float m = c.beta1 * t.m[i] + (1.f - c.beta1) * g;
    const float v = c.beta2 * t.v[i] + (1.f - c.beta2) * g * g;
    t.m[i] = m;
    t.v[i] = v;
    t.param[i] = t.param[i] * c.decay - c.step_size * m / (sqrtf(v) * c.inv_sqrt_bc2 + c.eps);
  }
}

}  // namespace

void adamw_update(const std::vector<AdamWTensor>& tensors) {
  std::vector<WorkItem> work;
  for (size_t ti = 0; ti < tensors.size(); ++ti)
    for (int64_t b = 0; b < tensors[ti].n; b += kChunk)
      work.push_back({static_cast<int64_t>(ti), b, std::min(b + kChunk, tensors[ti].n)});
  if (work.empty()) return;
  // One host buffer, one copy: the tensor table followed by the work table.
  const size_t table_bytes = tensors.size() * sizeof(AdamWTensor), work_bytes = work.size() * sizeof(WorkItem);
  const size_t work_offset = (table_bytes + 15) / 16 * 16;
  std::vector<unsigned char> host(work_offset + work_bytes);
  std::memcpy(host.data(), tensors.data(), table_bytes);
  std::memcpy(host.data() + work_offset, work.data(), work_bytes);
  Scratch<unsigned char> dev(static_cast<int64_t>(host.size()));
  check(cudaMemcpyAsync(dev.get(), host.data(), host.size(), cudaMemcpyHostToDevice, stream()), "adamw_update (tables)");
  adamw_kernel<<<static_cast<unsigned>(work.size()), kThreads, 0, stream()>>>(
      reinterpret_cast<const AdamWTensor*>(dev.get()), reinterpret_cast<const WorkItem*>(dev.get() + work_offset));
  check_launch("adamw_update");
}

namespace {
}  // namespace

void fill_adamw(Backend& b) { b.adamw.update = &adamw_update; }

}  // namespace linspec::kernels::cuda
