// embedding: row gather with a scatter-add backward into the table gradient.
#include "core/ops/dispatch.h"
#include "kernels/embedding.h"

namespace linspec::ops {

Tensor embedding(const Tensor& table_in, const Tensor& ids_in) {
  detail::check_cpu_float(table_in, "embedding", "table");
  LINSPEC_CHECK(table_in.dim() == 2, "embedding: table must be [V, D], got ", shape_str(table_in.shape()));
  LINSPEC_CHECK(ids_in.defined() && ids_in.dtype() == DType::I32 && ids_in.device() == Device::CPU,
                "embedding: ids must be an i32 CPU tensor");
  const int64_t vocab = table_in.size(0), width = table_in.size(1);
  Tensor table = table_in.contiguous(), ids = ids_in.contiguous();
  const int64_t n = ids.numel();
  const int32_t* id = ids.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    LINSPEC_CHECK(id[i] >= 0 && id[i] < vocab, "embedding: id ", id[i], " at position ", i,
                  " is out of range for a table of ", vocab, " rows");

  Shape out_shape = ids.shape();
  out_shape.push_back(width);
  Tensor out = Tensor::empty(out_shape, table.dtype());
  detail::dispatch_float(table.dtype(), "embedding", [&](auto t) {
    using T = decltype(t);
    kernels::cpu::embedding_forward(table.data<T>(), id, out.data<T>(), n, width);
  });

  if (any_requires_grad({&table_in})) {
    record_op(out, [table_in, ids, n, width](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      // With tied embeddings the LM head has already produced the table gradient by now: scatter
      // straight into it rather than building (and adding) a second dense [V, D] buffer.
      Tensor acc = table_in.grad();
      const bool in_place = acc.defined() && acc.dtype() == g.dtype() && acc.is_contiguous();
      Tensor dst = in_place ? acc : Tensor::empty(table_in.shape(), g.dtype());
      detail::dispatch_float(g.dtype(), "embedding backward", [&](auto t) {
        using T = decltype(t);
        kernels::cpu::embedding_backward(g.data<T>(), ids.data<int32_t>(), dst.data<T>(), n, width, table_in.size(0),
                                         !in_place);
      });
      if (!in_place) accumulate_grad(table_in, dst);
    });
  }
  return out;
}

}  // namespace linspec::ops
