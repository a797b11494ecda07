// Device::TestHost: a second device backed by host memory, for proving on a CPU-only machine that code keeps
// tensors on the model's device. Its kernels are the CPU backend's (host memory is what they need), but it is a
// distinct Device, so every op dispatches through the device-generic path, host code that touches one of its
// tensors with data<T>() fails, and every copy between it and the CPU is counted.
#pragma once
#include <cstdint>

namespace linspec::testing {

struct CrossDeviceCopies {
  int64_t to_host = 0, from_host = 0;        // device_copy calls each way
  int64_t to_host_bytes = 0, from_host_bytes = 0;
};

// Registers the TestHost backend (idempotent).
void install_test_host_device();
CrossDeviceCopies cross_device_copies();
void reset_cross_device_copies();

}  // namespace linspec::testing
