// Differentiable shape ops and reductions.
#include "core/ops/dispatch.h"

namespace linspec::ops {
namespace {
// Writes the contiguous `part` into dst's window [at, at + part.size(d)) along dim d (dst contiguous): one 2-D copy
// of `outer` rows on the tensors' device.
void copy_into_window(Tensor& dst, const Tensor& part, int64_t d, int64_t at) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= dst.size(i);
  for (int64_t i = d + 1; i < dst.dim(); ++i) inner *= dst.size(i);
  const size_t es = dtype_size(dst.dtype());
  const size_t run = static_cast<size_t>(part.size(d) * inner) * es;
  detail::backend_of("copy_into_window", {&dst, &part})
      .memory.copy_2d(static_cast<char*>(dst.raw_data()) + at * inner * es, dst.size(d) * inner * es, part.raw_data(),
                      run, run, outer);
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor out = x.detach().reshape(shape);
  if (any_requires_grad({&x})) {
    // A fresh handle so the view gets its own autograd identity.
    out = out.detach();
    // g by value and replaced by its own view: the view is then the buffer's only handle and accumulate_grad adopts
    // it (the LM head's logits gradient is [N, V]: a copy here costs a full pass and fresh pages every step).
    record_op(out, [x](Tensor g) {
      g = g.reshape(x.shape());
      accumulate_grad(x, g);
    });
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
      // Scatter g back into the sliced window of a zero tensor.
      Tensor gx = Tensor::zeros(x.shape(), g.dtype(), g.device());
      copy_into_window(gx, g.contiguous(), dim < 0 ? dim + x.dim() : dim, start);
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
  Tensor out = Tensor::empty(shape, xs[0].dtype(), xs[0].device());
  int64_t at = 0;
  for (const auto& x : xs) {
    detail::backend_of("concat", {&xs[0], &x});
    copy_into_window(out, x.contiguous(), d, at);
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
  detail::check_float(x_in, "sum", "x");
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  detail::dispatch_float(x.dtype(), "sum", [&](auto t) {
    using T = decltype(t);
    // Double accumulation: losses are summed over many elements.
    out.fill(detail::kernel(detail::float_kernels<T>(x).elementwise.sum, "sum", x)(x.device_data<T>(), x.numel()));
  });
  if (any_requires_grad({&x_in})) {
    record_op(out, [x_in](const Tensor& g) {
      // g (one element) broadcast to x's shape, on g's device: 0 + g with the scalar as a suffix-broadcast operand.
      accumulate_grad(x_in, add(Tensor::zeros(x_in.shape(), g.dtype(), g.device()), g.detach().reshape({})));
    });
  }
  return out;
}

Tensor mean(const Tensor& x) { return scale(sum(x), 1.0 / static_cast<double>(std::max<int64_t>(x.numel(), 1))); }

Tensor sum_last(const Tensor& x_in) {
  detail::check_float(x_in, "sum_last", "x");
  const int64_t n = x_in.size(-1);
  Shape shape(x_in.shape().begin(), x_in.shape().end() - 1);
  // Row sums as a GEMM with a ones column ([rows, n] · [n, 1]): one kernel on every backend, and its backward (the
  // outer product g · onesᵀ) comes with matmul.
  Tensor ones = Tensor::full({n, 1}, 1.0, x_in.dtype(), x_in.device());
  return reshape(matmul(reshape(x_in, {-1, n}), ones, false, false, MatmulPrecision::F32), shape);
}

}  // namespace linspec::ops
