// Row-block copies along dim 2 of [B, H, N, d] tensors (Tensor::copy_from needs a contiguous destination, and a
// slice along dim 2 is not one), on the tensors' device.
#pragma once
#include <vector>

#include "core/backend.h"
#include "core/tensor.h"

namespace linspec {

// Copies src [B, H, n, d] (any layout, converted to dst's dtype) into rows [at, at + n) of the contiguous
// dst [B, H, N, d].
inline void write_rows(const Tensor& dst, const Tensor& src_in, int64_t at) {
  LINSPEC_CHECK(dst.is_contiguous() && dst.dim() == 4 && src_in.dim() == 4 && src_in.size(0) == dst.size(0) &&
                    src_in.size(1) == dst.size(1) && src_in.size(3) == dst.size(3) && at >= 0 &&
                    at + src_in.size(2) <= dst.size(2),
                "write_rows: ", shape_str(src_in.shape()), " into rows from ", at, " of ", shape_str(dst.shape()));
  const Tensor src = src_in.to(dst.dtype()).contiguous();
  const int64_t heads = dst.size(0) * dst.size(1), N = dst.size(2), n = src.size(2), d = dst.size(3);
  const size_t esz = dtype_size(dst.dtype()), block = static_cast<size_t>(n * d) * esz;
  // One strided block copy on the tensors' device: `heads` rows of n·d elements into rows N·d apart.
  auto* out = static_cast<char*>(dst.raw_data()) + static_cast<size_t>(at * d) * esz;
  ops::detail::backend_of("write_rows", {&dst, &src}).memory.copy_2d(out, static_cast<size_t>(N * d) * esz,
                                                                     src.raw_data(), block, block, heads);
}

// Rows `rows` of x [B, H, N, d] in that order -> [B, H, n, d] (e.g. the accepted path of a verified tree).
inline Tensor gather_rows(const Tensor& x, const std::vector<int32_t>& rows) {
  const int64_t n = static_cast<int64_t>(rows.size());
  Tensor out = Tensor::empty({x.size(0), x.size(1), n, x.size(3)}, x.dtype(), x.device());
  for (int64_t i = 0; i < n; ++i) write_rows(out, x.slice(2, rows[i], rows[i] + 1), i);
  return out;
}

}  // namespace linspec
