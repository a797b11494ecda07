// embedding: row gather with a scatter-add backward into the table gradient.
#include "core/ops/dispatch.h"

namespace linspec::ops {

int64_t detail::first_invalid_id(const Tensor& ids, int64_t vocab, int64_t allowed) {
  // The id check is dtype-independent; the f32 table holds it for every backend.
  const auto& be = backend(ids.device());
  return kernel(be.f32.embedding.first_invalid_id, "first_invalid_id", ids)(ids.device_data<int32_t>(), ids.numel(),
                                                                            vocab, allowed);
}

Tensor embedding(const Tensor& table_in, const Tensor& ids_in) {
  detail::check_float(table_in, "embedding", "table");
  LINSPEC_CHECK(table_in.dim() == 2, "embedding: table must be [V, D], got ", shape_str(table_in.shape()));
  LINSPEC_CHECK(ids_in.defined() && ids_in.dtype() == DType::I32, "embedding: ids must be an i32 tensor");
  detail::backend_of("embedding", {&table_in, &ids_in});
  const int64_t vocab = table_in.size(0), width = table_in.size(1);
  Tensor table = table_in.contiguous(), ids = ids_in.contiguous();
  const int64_t n = ids.numel();
  if (const int64_t bad = detail::first_invalid_id(ids, vocab, INT64_MIN); bad >= 0)
    LINSPEC_CHECK(false, "embedding: id ", ids.to(Device::CPU).data<int32_t>()[bad], " at position ", bad,
                  " is out of range for a table of ", vocab, " rows");
  const int32_t* id = ids.device_data<int32_t>();

  Shape out_shape = ids.shape();
  out_shape.push_back(width);
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  detail::dispatch_float(table.dtype(), "embedding", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(table).embedding.forward, "embedding_forward", table)(
        table.device_data<T>(), id, out.device_data<T>(), n, width);
  });

  if (any_requires_grad({&table_in})) {
    record_op(out, [table_in, ids, n, width](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      // With tied embeddings the LM head has already produced the table gradient by now: scatter
      // straight into it rather than building (and adding) a second dense [V, D] buffer.
      Tensor acc = table_in.grad();
      const bool in_place = acc.defined() && acc.dtype() == g.dtype() && acc.is_contiguous();
      Tensor dst = in_place ? acc : Tensor::empty(table_in.shape(), g.dtype(), g.device());
      detail::dispatch_float(g.dtype(), "embedding backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(g).embedding.backward, "embedding_backward", g)(
            g.device_data<T>(), ids.device_data<int32_t>(), dst.device_data<T>(), n, width, table_in.size(0),
            !in_place);
      });
      if (!in_place) accumulate_grad(table_in, dst);
    });
  }
  return out;
}

}  // namespace linspec::ops
