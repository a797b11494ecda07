#include "core/tensor.h"

#include <algorithm>
#include <sstream>

#include "core/autograd.h"
#include "core/backend.h"

namespace linspec {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) { data_ = device_alloc(device, bytes); }
Storage::~Storage() { device_free(device_, data_, bytes_); }

Tensor make_view(const Tensor& base, Shape shape, std::vector<int64_t> strides, int64_t offset) {
  Tensor t;
  t.storage_ = base.storage_;
  t.dtype_ = base.dtype_;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(strides);
  t.offset_ = offset;
  return t;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) LINSPEC_CHECK(d >= 0, "negative dimension in ", shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  device_memset_zero(device, t.raw_data(), t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill(value);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  if (d < 0) d += dim();
  LINSPEC_CHECK(d >= 0 && d < dim(), "dimension ", d, " out of range for shape ", shape_str(shape_));
  return shape_[d];
}

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != acc) return false;
    acc *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  LINSPEC_CHECK(defined(), "raw_data() on an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

double Tensor::item() const {
  LINSPEC_CHECK(numel() == 1, "item() on shape ", shape_str(shape_));
  Tensor c = to(Device::CPU);
  switch (dtype_) {
    case DType::I32:
      return *c.data<int32_t>();
    case DType::I64:
      return static_cast<double>(*c.data<int64_t>());
    default: {
      double v;
      convert_floats(c.raw_data(), dtype_, &v, DType::F64, 1);
      return v;
    }
  }
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::CPU).contiguous();
  std::vector<T> out(static_cast<size_t>(numel()));
  if (c.dtype() == dtype_of<T>::value)
    std::copy_n(c.data<T>(), out.size(), out.data());
  else
    convert_floats(c.raw_data(), c.dtype(), out.data(), dtype_of<T>::value, out.size());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor Tensor::view(const Shape& requested) const {
  LINSPEC_CHECK(is_contiguous(), "view() of a non-contiguous tensor; use reshape()");
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LINSPEC_CHECK(infer < 0, "view(): more than one -1 in ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) shape[infer] = known == 0 ? 0 : numel() / known;
  LINSPEC_CHECK(shape_numel(shape) == numel(), "view(): cannot view ", shape_str(shape_), " as ", shape_str(requested));
  Tensor t = make_view(*this, shape, contiguous_strides(shape), offset_);
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const { return is_contiguous() ? view(shape) : contiguous().view(shape); }

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  if (a < 0) a += dim();
  if (b < 0) b += dim();
  LINSPEC_CHECK(a >= 0 && a < dim() && b >= 0 && b < dim(), "transpose dims out of range");
  Shape s = shape_;
  auto st = strides_;
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  return make_view(*this, s, st, offset_);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  if (d < 0) d += dim();
  LINSPEC_CHECK(d >= 0 && d < dim(), "slice dim out of range");
  LINSPEC_CHECK(0 <= start && start <= end && end <= shape_[d], "slice [", start, ", ", end, ") of dim size ",
                shape_[d]);
  Shape s = shape_;
  s[d] = end - start;
  return make_view(*this, s, strides_, offset_ + start * strides_[d]);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  if (d < 0) d += dim();
  Tensor t = slice(d, index, index + 1);
  Shape s = t.shape_;
  auto st = t.strides_;
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return make_view(t, s, st, t.offset_);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  if (d < 0) d += dim() + 1;
  Shape s = shape_;
  auto st = strides_;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, d < dim() ? strides_[d] * shape_[d] : 1);
  return make_view(*this, s, st, offset_);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = empty(shape_, dtype_, device());
  LINSPEC_CHECK(dim() <= 8, "contiguous(): more than 8 dims in ", shape_str(shape_));
  backend(device()).memory.gather_strided(raw_data(), out.raw_data(), dtype_size(dtype_), static_cast<int>(dim()),
                                          shape_.data(), strides_.data());
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_, device());
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype_) return *this;
  LINSPEC_CHECK(dt != DType::Q8 && dtype_ != DType::Q8, "to(", dtype_name(dt), ") from ", dtype_name(dtype_),
                ": q8 rows are packed weights, made by ops::quantize_q8 and read by the Q8 GEMM only");
  Tensor src = contiguous();
  Tensor out = empty(shape_, dt, device());
  backend(device()).memory.convert(src.raw_data(), dtype_, out.raw_data(), dt, numel());
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape_, dtype_, d);
  device_copy(out.raw_data(), d, src.raw_data(), src.device(), nbytes());
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  LINSPEC_CHECK(src.numel() == numel(), "copy_from: ", shape_str(src.shape()), " into ", shape_str(shape_));
  LINSPEC_CHECK(is_contiguous(), "copy_from into a non-contiguous view");
  // Convert on the source's device before a device move: that moves the smaller of the two where it matters
  // (bf16 weights to a GPU) and never converts on a device that is not involved.
  Tensor s = src.dtype() == dtype_ ? src.contiguous() : src.to(dtype_);
  device_copy(raw_data(), device(), s.raw_data(), s.device(), nbytes());
}

void Tensor::fill(double value) {
  LINSPEC_CHECK(is_contiguous(), "fill() needs a contiguous tensor");
  // One element in the tensor's format, then the backend repeats it.
  unsigned char pattern[8];
  LINSPEC_CHECK(dtype_ != DType::Q8, "fill() on a q8 tensor");
  convert_floats(&value, DType::F64, pattern, dtype_, 1);
  backend(device()).memory.fill(raw_data(), pattern, dtype_size(dtype_), numel());
}

void Tensor::zero() {
  LINSPEC_CHECK(is_contiguous(), "zero() needs a contiguous tensor");
  device_memset_zero(device(), raw_data(), nbytes());
}

bool Tensor::requires_grad() const { return meta_ != nullptr; }

Tensor& Tensor::set_requires_grad(bool on) {
  if (on && !meta_) meta_ = std::make_shared<AutogradMeta>();
  if (!on) meta_.reset();
  return *this;
}

Tensor Tensor::grad() const { return meta_ ? meta_->grad : Tensor(); }

void Tensor::zero_grad() {
  if (meta_) meta_->grad = Tensor(), meta_->grad_stale = false;
}

Tensor Tensor::leaf_on(Device d) const {
  if (!defined() || device() == d) return *this;
  Tensor out = to(d);
  if (requires_grad()) out.set_requires_grad(true);
  return out;
}

Tensor Tensor::detach() const {
  Tensor t = *this;
  t.meta_.reset();
  return t;
}

void Tensor::retain_grad() const {
  if (meta_) meta_->retain = true;
}

}  // namespace linspec
