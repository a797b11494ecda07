// Which compute backend runs kernels for a device, and the lookup ops use to dispatch on their operands' device.
// The tables themselves are in kernels/backend.h; docs/architecture.md says how to add an op or a backend.
#pragma once
#include <initializer_list>

#include "core/tensor.h"
#include "kernels/backend.h"

namespace linspec {

// The backend of device d. Throws InputError when d has none here (CUDA: built without it, or no GPU visible).
const kernels::Backend& backend(Device d);
bool backend_present(Device d);
// Registers (or, with nullptr, removes) the backend of d. CPU and CUDA register themselves; tests use this for
// Device::TestHost.
void register_backend(Device d, const kernels::Backend* b);

namespace ops::detail {
// The backend of an op's operands. Every defined tensor must be on one device; otherwise the error names the op,
// the first operand's device and the one that differs.
const kernels::Backend& backend_of(const char* op, std::initializer_list<const Tensor*> tensors);

// A kernel from a backend table, or an error naming the op and the device when that backend lacks it.
template <typename Fn>
Fn kernel(Fn fn, const char* op, const kernels::Backend& b) {
  if (!fn) throw_input_error(op, ": not implemented on device ", b.name);
  return fn;
}
}  // namespace ops::detail

}  // namespace linspec
