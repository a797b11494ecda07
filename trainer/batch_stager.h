// Data batches to the model's device. Where the backend has page-locked host memory and asynchronous uploads (CUDA),
// a batch is copied into one of two pinned buffers and uploaded behind the work already queued, so the host goes
// on queuing the step instead of waiting for a pageable copy; elsewhere (CPU, host-memory devices) a plain copy.
#pragma once
#include <cstddef>

#include "core/tensor.h"

namespace linspec::trainer {

class BatchStager {
 public:
  explicit BatchStager(Device device) : device_(device) {}
  ~BatchStager();
  BatchStager(const BatchStager&) = delete;
  BatchStager& operator=(const BatchStager&) = delete;

  // The batch (any host tensor) on the device. The result is ready for kernels queued after this call.
  Tensor upload(const Tensor& host_batch);
  // Uploads that went through a pinned buffer (for tests and logs).
  int64_t pinned_uploads() const { return pinned_uploads_; }

 private:
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    bool used = false;  // an upload from it may still be queued
  };
  Device device_;
  Buffer buffers_[2];
  int next_ = 0;
  int64_t pinned_uploads_ = 0;
};

}  // namespace linspec::trainer
