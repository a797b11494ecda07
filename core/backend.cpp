#include "core/backend.h"

#include <atomic>

#include "kernels/cpu/backend.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda_runtime.h"

namespace linspec {
namespace {
// The backends compiled into this binary, one line each; a test may add Device::TestHost.
struct Registry {
  std::atomic<const kernels::Backend*> by_device[kDeviceCount] = {};
  Registry() {
    by_device[static_cast<int>(Device::CPU)] = &kernels::cpu_backend();
    by_device[static_cast<int>(Device::CUDA)] = kernels::cuda_backend();  // null without the CUDA build
  }
};
std::atomic<const kernels::Backend*>& slot(Device d) {
  static Registry r;
  return r.by_device[static_cast<int>(d)];
}
}  // namespace

bool backend_present(Device d) {
  if (d == Device::CUDA && !cuda_available()) return false;
  return slot(d).load() != nullptr;
}

const kernels::Backend& backend(Device d) {
  const kernels::Backend* b = slot(d).load();
  if (d == Device::CUDA && !cuda_available()) require_cuda("device cuda");
  if (!b) throw_input_error("device ", device_name(d), " has no backend in this linspec");
  return *b;
}

void register_backend(Device d, const kernels::Backend* b) { slot(d).store(b); }

namespace ops::detail {
const kernels::Backend& backend_of(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    else if (t->device() != first->device())
      throw_input_error(op, ": operands are on different devices (", device_name(first->device()), " and ",
                        device_name(t->device()), "); move them with .to(device) first");
  }
  return backend(first ? first->device() : Device::CPU);
}
}  // namespace ops::detail

}  // namespace linspec
