// Differentiable shape ops and reductions.
#include "core/ops/dispatch.h"
#include "kernels/elementwise.h"

namespace linspec::ops {

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = x.detach().reshape(shape);
  if (any_requires_grad({&x})) {
    // A fresh handle so the view gets its own autograd identity.
    out = out.detach();
    record_op(out, [x](const Tensor& g) { accumulate_grad(x, g.reshape(x.shape())); });
  }
  return out;
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  Tensor out = x.detach().transpose(a, b).contiguous();
  if (out.shares_storage_with(x)) out = out.clone();  // transposing a size-1 dim is a no-op view
  if (any_requires_grad({&x})) {
    record_op(out, [x, a, b](const Tensor& g) { accumulate_grad(x, g.transpose(a, b).contiguous()); });
  }
  return out;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  Tensor out = x.detach().slice(dim, start, end).contiguous();
  if (out.shares_storage_with(x)) out = out.clone();
  if (any_requires_grad({&x})) {
    record_op(out, [x, dim, start, end](const Tensor& g) {
      Tensor gx = Tensor::zeros(x.shape(), g.dtype());
      // Scatter g back into the sliced window of a zero tensor.
      Tensor window = gx.slice(dim, start, end);
      Tensor gc = g.contiguous();
      const int64_t d = dim < 0 ? dim + x.dim() : dim;
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
      for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
      const size_t es = dtype_size(g.dtype());
      const int64_t run = (end - start) * inner;
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(static_cast<char*>(gx.raw_data()) + (o * x.size(d) + start) * inner * es,
                    static_cast<const char*>(gc.raw_data()) + o * run * es, run * es);
      (void)window;
      accumulate_grad(x, gx);
    });
  }
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  LINSPEC_CHECK(!xs.empty(), "concat of nothing");
  const int64_t nd = xs[0].dim();
  const int64_t d = dim < 0 ? dim + nd : dim;
  Shape shape = xs[0].shape();
  shape[d] = 0;
  for (const auto& x : xs) {
    LINSPEC_CHECK(x.dim() == nd && x.dtype() == xs[0].dtype(), "concat: rank/dtype mismatch");
    for (int64_t i = 0; i < nd; ++i)
      LINSPEC_CHECK(i == d || x.size(i) == xs[0].size(i), "concat: shapes ", shape_str(x.shape()), " and ",
                    shape_str(xs[0].shape()));
    shape[d] += x.size(d);
  }
  Tensor out = Tensor::empty(shape, xs[0].dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= shape[i];
  for (int64_t i = d + 1; i < nd; ++i) inner *= shape[i];
  const size_t es = dtype_size(out.dtype());
  int64_t at = 0;
  for (const auto& x : xs) {
    Tensor xc = x.contiguous();
    const int64_t run = x.size(d) * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<char*>(out.raw_data()) + (o * shape[d] + at) * inner * es,
                  static_cast<const char*>(xc.raw_data()) + o * run * es, run * es);
    at += x.size(d);
  }
  bool needs = false;
  for (const auto& x : xs) needs = needs || any_requires_grad({&x});
  if (needs) {
    record_op(out, [xs, d](const Tensor& g) {
      int64_t at = 0;
      for (const auto& x : xs) {
        if (x.requires_grad()) accumulate_grad(x, g.slice(d, at, at + x.size(d)).contiguous());
        at += x.size(d);
      }
    });
  }
  return out;
}

Tensor sum(const Tensor& x_in) {
  detail::check_cpu_float(x_in, "sum", "x");
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.dtype());
  detail::dispatch_float(x.dtype(), "sum", [&](auto t) {
    using T = decltype(t);
    const T* p = x.data<T>();
    double acc = 0;  // double accumulation: losses are summed over many elements
    const int64_t n = x.numel();
#pragma omp parallel for reduction(+ : acc) schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) acc += p[i];
    *out.data<T>() = static_cast<T>(acc);
  });
  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in](const Tensor& g) {
      accumulate_grad(x_in, Tensor::full(x_in.shape(), g.item(), g.dtype()));
    });
  }
  return out;
}

Tensor mean(const Tensor& x) { return scale(sum(x), 1.0 / static_cast<double>(std::max<int64_t>(x.numel(), 1))); }

Tensor sum_last(const Tensor& x_in) {
  detail::check_cpu_float(x_in, "sum_last", "x");
  Tensor x = x_in.contiguous();
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  Shape shape(x.shape().begin(), x.shape().end() - 1);
  Tensor out = Tensor::empty(shape, x.dtype());
  detail::dispatch_float(x.dtype(), "sum_last", [&](auto t) {
    using T = decltype(t);
    const T* p = x.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for schedule(static) if (rows * n > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) {
      T acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += p[r * n + j];
      o[r] = acc;
    }
  });
  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in, n, rows](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(x_in.shape(), g.dtype());
      detail::dispatch_float(g.dtype(), "sum_last backward", [&](auto t) {
        using T = decltype(t);
        for (int64_t r = 0; r < rows; ++r) std::fill_n(gx.data<T>() + r * n, n, g.data<T>()[r]);
      });
      accumulate_grad(x_in, gx);
    });
  }
  return out;
}

}  // namespace linspec::ops
