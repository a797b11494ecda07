// Helpers for the table-driven CUDA-vs-CPU kernel tests (test_cuda_ops.cpp, test_cuda_attention_ops.cpp).
// Every table entry runs one kernel family on random inputs through the CPU kernel and its CUDA twin and compares.
// Without the CUDA backend, or without a visible GPU, every entry skips with a message (the project's one allowed
// skip); the table and its names are the same in every build.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/rng.h"
#include "kernels/cpu/backend.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda_runtime.h"

namespace linspec::cuda_test {

struct OpCase {
  std::string name;
  std::function<void()> run;  // null in builds without CUDA
};
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

#ifdef LINSPEC_WITH_CUDA
#define LINSPEC_CUDA_CASE(name, fn) ::linspec::cuda_test::OpCase{name, fn}
#else
#define LINSPEC_CUDA_CASE(name, fn) ::linspec::cuda_test::OpCase{name, nullptr}
#endif

// The skip every entry starts with.
#define LINSPEC_REQUIRE_GPU()                                                                                   \
  do {                                                                                                          \
    if (!::linspec::kernels::cuda::built_with_cuda())                                                           \
      GTEST_SKIP() << "built without CUDA (configure with -DLINSPEC_CUDA=ON to run the CUDA kernel tests)";     \
    if (!::linspec::cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU kernel test not run here"; \
  } while (0)

// The two backend tables under comparison (raw kernels, device pointers for the CUDA one).
inline const kernels::Backend& kcpu_backend() { return kernels::cpu_backend(); }
inline const kernels::Backend& kgpu_backend() { return *kernels::cuda_backend(); }
template <typename T>
const kernels::FloatKernels<T>& kcpu() {
  return kernels::cpu_kernels<T>();
}
template <typename T>
const kernels::FloatKernels<T>& kgpu() {
  return kgpu_backend().of<T>();
}

template <typename T>
std::vector<T> random_vector(size_t n, Philox& rng, double stddev = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.normal() * stddev);
  return v;
}

// Device buffer for a test: filled from a host vector, or with all-ones bytes (NaN for floats) so that an element a
// kernel should have written but did not shows up in the comparison.
template <typename T>
class Dev {
 public:
  explicit Dev(const std::vector<T>& host) : n_(host.size()) {
    p_ = static_cast<T*>(kgpu_backend().memory.alloc(bytes()));
    kgpu_backend().memory.copy_from_host(p_, host.data(), bytes());
  }
  explicit Dev(size_t n) : n_(n) {
    p_ = static_cast<T*>(kgpu_backend().memory.alloc(bytes()));
    std::vector<unsigned char> poison(bytes(), 0xff);
    kgpu_backend().memory.copy_from_host(p_, poison.data(), bytes());
  }
  ~Dev() { kgpu_backend().memory.free(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;

  T* get() { return p_; }
  const T* get() const { return p_; }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    kgpu_backend().memory.copy_to_host(h.data(), p_, bytes());
    return h;
  }
  T scalar() const { return host().at(0); }

 private:
  size_t bytes() const { return std::max<size_t>(n_, 1) * sizeof(T); }
  size_t n_;
  T* p_ = nullptr;
};

// Elementwise |got − ref| ≤ tol · (|ref| + rms(ref)): relative where values are large, absolute (scaled to the
// data) near zero crossings. Reports the worst element.
template <typename T>
void expect_close(const std::string& what, const std::vector<T>& ref, const std::vector<T>& got, double tol) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  double ss = 0;
  for (T r : ref) ss += static_cast<double>(r) * static_cast<double>(r);
  const double rms = ref.empty() ? 0.0 : std::sqrt(ss / static_cast<double>(ref.size()));
  double worst = 0;
  size_t worst_i = 0, bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double r = static_cast<double>(ref[i]), g = static_cast<double>(got[i]);
    const double err = std::fabs(g - r) / (std::fabs(r) + rms + 1e-30);
    if (!(err <= tol)) ++bad;  // NaN counts as bad
    if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err, worst_i = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.size() << " elements off; worst at " << worst_i
                     << ": cpu " << ref[worst_i] << " vs cuda " << got[worst_i] << " (scaled error " << worst
                     << ", tolerance " << tol << ")";
}

inline void expect_close_scalar(const std::string& what, double ref, double got, double tol) {
  EXPECT_LE(std::fabs(got - ref), tol * (std::fabs(ref) + 1.0)) << what << ": cpu " << ref << " vs cuda " << got;
}

// Default tolerances: f32 kernels differ from the CPU only by summation order and FMA contraction.
template <typename T>
constexpr double tolerance() {
  return sizeof(T) == 4 ? 2e-5 : 1e-11;
}

}  // namespace linspec::cuda_test
