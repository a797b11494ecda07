// The tile walk of the batch-invariant weight-row GEMMs (matmul_weight_rows.cpp): outputs [0, m) × [n0, n1) in
// tiles of R activation rows × C weight rows. A tile computes each of its outputs with the same operations as a
// 1 × 1 tile would, so how the outputs are tiled never changes a result.
#pragma once
#include <algorithm>
#include <cstdint>

namespace linspec::kernels::cpu {

// Calls tile.template operator()<R, C>(row, col) with R = rows (1 ≤ rows ≤ R) known at compile time; only tiles of
// up to R rows are instantiated.
template <int C, int R, typename Tile>
void tile_of_rows(int64_t rows, int64_t r, int64_t j, Tile& tile) {
  if constexpr (R > 1)
    if (rows < R) return tile_of_rows<C, R - 1>(rows, r, j, tile);
  tile.template operator()<R, C>(r, j);
}

// Weight rows [n0, n1) in groups of C, each group against every activation row before the next: the group comes
// from memory once (the first row tile streams it, prefetching ahead) and from L1 for the other row tiles. Rows go
// in tiles of up to kMaxRows, so up to 8 rows (a verified tree of 8 nodes) read the weights in a single pass that
// overlaps the arithmetic with the stream; a remainder of rows is one tile, not one pass per row.
template <int C, int kMaxRows, typename Tile>
void weight_groups_against_rows(int64_t m, int64_t n0, int64_t n1, Tile& tile) {
  const auto all_rows = [&]<int G>(int64_t j) {
    int64_t r = 0;
    for (; r + kMaxRows <= m; r += kMaxRows) tile_of_rows<G, kMaxRows>(kMaxRows, r, j, tile);
    if (r < m) tile_of_rows<G, kMaxRows>(m - r, r, j, tile);
  };
  int64_t j = n0;
  for (; j + C <= n1; j += C) all_rows.template operator()<C>(j);
  for (; j < n1; ++j) all_rows.template operator()<1>(j);
}

// Every output of c [m, n] over the OpenMP threads, in work items of 24 weight rows (SmolLM2's 192, 576, 1536 and
// 49152 all divide); with `simd`, tiles of rows × 4 weight rows for up to 4 activation rows (one token: 4 weight rows
// in flight), rows × 3 beyond (8 × 3: 24 accumulators). On a SmolLM2 step of GEMMs (bench_decode_gemm
// BM_decode_step_*, alternating runs) 3 rows went from 1.6× to 1.2× of one row's time and 8 rows from ~1.6× to
// ~1.3× at f32 (4 × 4 tiles with one pass over the weights per 4 rows and per leftover row, before). Without
// `simd`, scalar(row, col) per output.
template <typename Tile, typename Scalar>
void compute_outputs(int64_t m, int64_t n, int64_t k, bool simd, Tile&& tile, Scalar&& scalar) {
  constexpr int64_t kRowsPerItem = 24;
  const int64_t items = (n + kRowsPerItem - 1) / kRowsPerItem;
#pragma omp parallel for schedule(static) if (m * n * k > (1 << 15))
  for (int64_t it = 0; it < items; ++it) {
    const int64_t n0 = it * kRowsPerItem, n1 = std::min(n, n0 + kRowsPerItem);
    if (!simd) {
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = n0; j < n1; ++j) scalar(r, j);
    } else if (m <= 4) {
      weight_groups_against_rows<4, 4>(m, n0, n1, tile);
    } else {
      weight_groups_against_rows<3, 8>(m, n0, n1, tile);
    }
  }
}

}  // namespace linspec::kernels::cpu
