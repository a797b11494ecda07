#include "model/tree_rope.h"

#include "core/autograd.h"
#include "core/ops.h"
#include "core/tensor_rows.h"

namespace linspec {

Tensor rope_at_positions(const Tensor& x, const std::vector<int64_t>& positions, const Tensor& inv_freq) {
  LINSPEC_CHECK(x.dim() == 4 && x.size(2) == static_cast<int64_t>(positions.size()), "rope_at_positions: x ",
                shape_str(x.shape()), " for ", positions.size(), " positions");
  NoGradGuard no_grad;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  // Runs of consecutive positions (a chain) rotate in one call; a tree breaks into a few such runs.
  const int64_t n = x.size(2);
  for (int64_t start = 0; start < n;) {
    int64_t end = start + 1;
    while (end < n && positions[end] == positions[end - 1] + 1) ++end;
    Tensor part = ops::rope(x.slice(2, start, end).contiguous(), positions[start], inv_freq);
    write_rows(out, part, start);
    start = end;
  }
  return out;
}

}  // namespace linspec
