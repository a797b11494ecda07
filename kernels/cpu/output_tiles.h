// The tile walk of the batch-invariant inference GEMMs (matmul_q8.cpp, matmul_bf16_weight.cpp): outputs
// [0, m) × [n0, n1) in tiles of MR × NR, the edges in tiles of one row or one column. A tile computes each of its
// outputs with the same operations as a 1 × 1 tile would, so how the outputs are tiled never changes a result.
#pragma once
#include <cstdint>

namespace linspec::kernels::cpu {

// tile is a generic lambda called as tile.template operator()<R, C>(row, col) for R ∈ {MR, 1}, C ∈ {NR, 1}.
template <int MR, int NR, typename Tile>
void for_each_output_tile(int64_t m, int64_t n0, int64_t n1, Tile&& tile) {
  auto columns = [&]<int R>(int64_t r) {
    int64_t j = n0;
    for (; j + NR <= n1; j += NR) tile.template operator()<R, NR>(r, j);
    for (; j < n1; ++j) tile.template operator()<R, 1>(r, j);
  };
  int64_t r = 0;
  for (; r + MR <= m; r += MR) columns.template operator()<MR>(r);
  for (; r < m; ++r) columns.template operator()<1>(r);
}

}  // namespace linspec::kernels::cpu
