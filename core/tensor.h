// Tensor: a strided view over reference-counted storage on a device.
//
// Methods on Tensor are plain array operations and are NOT recorded for autograd; the functions in
// core/ops.h are the differentiable ones. A tensor that requires grad carries an AutogradMeta
// (its accumulated .grad) shared by all copies of the handle.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace linspec {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// Owns one device allocation.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::CPU;
};

class Tensor;
struct AutogradMeta;

class Tensor {
 public:
  Tensor() = default;

  // ---- construction (contiguous, row-major) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::CPU) {
    return full({}, value, dtype, device);
  }
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  // ---- metadata ----
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::CPU; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  bool shares_storage_with(const Tensor& o) const { return storage_ && storage_ == o.storage_; }

  // ---- element access ----
  // Pointer to the first element of this view in its device's memory (for copies and backend kernels).
  void* raw_data() const;
  // Host access: checks the dtype, and that the tensor is on the CPU — host code that reads a tensor on another
  // device is a bug (an implicit copy or a crash on a GPU), so it fails here, naming the device.
  template <typename T>
  T* data() const;
  // The same pointer for any device, for handing to the backend kernels of that device (core/ops).
  template <typename T>
  T* device_data() const;
  double item() const;  // single-element tensor of any numeric dtype, on CPU
  template <typename T>
  std::vector<T> to_vector() const;  // copies (any layout, converting floats) to a host vector

  // ---- views (no copy) and copies ----
  Tensor view(const Shape& shape) const;  // contiguous only; one dim may be -1
  Tensor reshape(const Shape& shape) const;  // view when contiguous, else a contiguous copy
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;  // [start, end)
  Tensor select(int64_t dim, int64_t index) const;  // drops dim
  Tensor unsqueeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;  // same object when already that dtype
  Tensor to(Device device) const;
  void copy_from(const Tensor& src);  // same numel; converts dtype and device
  void fill(double value);
  void zero();

  // ---- autograd ----
  bool requires_grad() const;
  // Marks a leaf (a Parameter) whose gradient is accumulated into .grad() by backward().
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const;
  void zero_grad();  // drops the accumulated gradient
  const std::shared_ptr<AutogradMeta>& autograd_meta() const { return meta_; }
  void set_autograd_meta(std::shared_ptr<AutogradMeta> m) { meta_ = std::move(m); }
  // The same data without autograd history.
  Tensor detach() const;
  // The values on `device` as a fresh leaf that requires grad when this one does (placing a parameter; the same
  // object when it is already there).
  Tensor leaf_on(Device device) const;
  // Keep the gradient of a non-leaf after backward (for inspection and tests).
  void retain_grad() const;

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  std::vector<int64_t> strides_;  // in elements
  DType dtype_ = DType::F32;
  std::shared_ptr<AutogradMeta> meta_;

  friend Tensor make_view(const Tensor& base, Shape shape, std::vector<int64_t> strides, int64_t offset);
};

Shape contiguous_strides(const Shape& shape);

template <typename T>
T* Tensor::device_data() const {
  LINSPEC_CHECK(defined(), "data() on an undefined tensor");
  // uint16_t serves both bf16 and f16 storage.
  if constexpr (std::is_same_v<T, uint16_t>)
    LINSPEC_CHECK(dtype_ == DType::BF16 || dtype_ == DType::F16, "data<uint16_t>() with dtype ", dtype_name(dtype_));
  else
    LINSPEC_CHECK(dtype_of<T>::value == dtype_, "data<T>() with dtype ", dtype_name(dtype_));
  return static_cast<T*>(raw_data());
}

template <typename T>
T* Tensor::data() const {
  LINSPEC_CHECK(device() == Device::CPU, "host access to a tensor on device ", device_name(device()), " (shape ",
                shape_str(shape_), "): copy it with .to(Device::CPU) or run this on its device");
  return device_data<T>();
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  LINSPEC_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace linspec
