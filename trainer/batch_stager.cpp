#include "trainer/batch_stager.h"

#include <cstring>

#include "core/backend.h"

namespace linspec::trainer {

BatchStager::~BatchStager() {
  const auto& mem = backend(device_).memory;
  bool any = false;
  for (const Buffer& b : buffers_) any = any || b.p;
  if (!any) return;
  mem.synchronize();  // no upload may still read a buffer being freed
  for (Buffer& b : buffers_)
    if (b.p) mem.free_pinned_host(b.p);
}

Tensor BatchStager::upload(const Tensor& host_batch) {
  if (host_batch.device() == device_) return host_batch;
  const auto& mem = backend(device_).memory;
  if (host_batch.device() != Device::CPU || !mem.alloc_pinned_host || !mem.copy_from_host_async)
    return host_batch.to(device_);
  const Tensor src = host_batch.contiguous();
  const size_t bytes = static_cast<size_t>(src.numel()) * dtype_size(src.dtype());
  Buffer& buf = buffers_[next_];
  next_ ^= 1;
  if (buf.used) mem.synchronize();  // its previous upload (two batches ago) must have been read
  if (buf.bytes < bytes) {
    if (buf.p) mem.free_pinned_host(buf.p);
    buf.p = mem.alloc_pinned_host(bytes);
    buf.bytes = bytes;
  }
  std::memcpy(buf.p, src.raw_data(), bytes);
  Tensor out = Tensor::empty(src.shape(), src.dtype(), device_);
  mem.copy_from_host_async(out.raw_data(), buf.p, bytes);
  buf.used = true;
  ++pinned_uploads_;
  return out;
}

}  // namespace linspec::trainer
