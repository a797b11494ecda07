// The tile walk of the batch-invariant weight-row GEMMs (matmul_weight_rows.cpp): outputs [0, m) × [n0, n1) in
// tiles of MR × NR, the edges in tiles of one row or one column. A tile computes each of its
// outputs with the same operations as a 1 × 1 tile would, so how the outputs are tiled never changes a result.
#pragma once
#include <algorithm>
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

// Every output of c [m, n] over the OpenMP threads, in work items of 16 weight rows (one item's rows stay in cache
// while every activation row passes over them): with `simd`, tiles of 1 × 4 for one token (more weight rows in
// flight) or 4 × 4; without it, scalar(row, col) per output.
template <typename Tile, typename Scalar>
void compute_outputs(int64_t m, int64_t n, int64_t k, bool simd, Tile&& tile, Scalar&& scalar) {
  constexpr int64_t kRowsPerItem = 16;
  const int64_t items = (n + kRowsPerItem - 1) / kRowsPerItem;
#pragma omp parallel for schedule(static) if (m * n * k > (1 << 15))
  for (int64_t it = 0; it < items; ++it) {
    const int64_t n0 = it * kRowsPerItem, n1 = std::min(n, n0 + kRowsPerItem);
    if (!simd) {
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = n0; j < n1; ++j) scalar(r, j);
    } else if (m == 1) {
      for_each_output_tile<1, 4>(m, n0, n1, tile);
    } else {
      for_each_output_tile<4, 4>(m, n0, n1, tile);
    }
  }
}

}  // namespace linspec::kernels::cpu
