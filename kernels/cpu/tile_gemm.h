// Small GEMMs on cache-resident tiles for the fused kernels (flash attention): C[M×N] (+)= A[M×K]·B[K×N].
// A is read through (row, column) strides, so a transposed A costs nothing; B and C are row-major.
// Register blocking (6 rows × a panel of columns) lets the compiler keep every accumulator in a vector
// register. Measured on one AVX-512 core, 64³ f32 tiles: ~160 GFLOP/s here vs ~107 through oneDNN's
// matmul primitive (kernels/matmul.h), whose per-call overhead is comparable to the product itself.
// Include after `#pragma GCC target("prefer-vector-width=512")` to get 512-bit vectors on AVX-512 CPUs.
#pragma once
#include <cstdint>

namespace linspec::kernels::cpu::tile {

template <typename T, int MR, int NR>
inline void micro(int64_t K, const T* a, int64_t ars, int64_t acs, const T* b, int64_t ldb, T* c, int64_t ldc,
                  bool accumulate) {
  T acc[MR][NR];
  for (int r = 0; r < MR; ++r)
#pragma omp simd
    for (int j = 0; j < NR; ++j) acc[r][j] = accumulate ? c[r * ldc + j] : T(0);
  for (int64_t k = 0; k < K; ++k) {
    const T* brow = b + k * ldb;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const T av = a[r * ars + k * acs];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[r][j] += av * brow[j];
    }
  }
  for (int r = 0; r < MR; ++r)
#pragma omp simd
    for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];
}

// Any number of rows, `n` (< NR) columns: the ragged right edge.
template <typename T, int NR>
inline void edge_columns(int64_t M, int64_t n, int64_t K, const T* a, int64_t ars, int64_t acs, const T* b,
                         int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  for (int64_t r = 0; r < M; ++r) {
    T acc[NR];
    for (int64_t j = 0; j < n; ++j) acc[j] = accumulate ? c[r * ldc + j] : T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T av = a[r * ars + k * acs];
      const T* brow = b + k * ldb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) acc[j] += av * brow[j];
    }
    for (int64_t j = 0; j < n; ++j) c[r * ldc + j] = acc[j];
  }
}

// All rows of one column panel of width NR: blocks of 6 rows, then the remainder.
template <typename T, int NR>
inline void panel(int64_t M, int64_t K, const T* a, int64_t ars, int64_t acs, const T* b, int64_t ldb, T* c,
                  int64_t ldc, bool accumulate) {
  int64_t r = 0;
  for (; r + 6 <= M; r += 6) micro<T, 6, NR>(K, a + r * ars, ars, acs, b, ldb, c + r * ldc, ldc, accumulate);
  const T* ar = a + r * ars;
  T* cr = c + r * ldc;
  switch (M - r) {
    case 5: micro<T, 5, NR>(K, ar, ars, acs, b, ldb, cr, ldc, accumulate); break;
    case 4: micro<T, 4, NR>(K, ar, ars, acs, b, ldb, cr, ldc, accumulate); break;
    case 3: micro<T, 3, NR>(K, ar, ars, acs, b, ldb, cr, ldc, accumulate); break;
    case 2: micro<T, 2, NR>(K, ar, ars, acs, b, ldb, cr, ldc, accumulate); break;
    case 1: micro<T, 1, NR>(K, ar, ars, acs, b, ldb, cr, ldc, accumulate); break;
    default: break;
  }
}

// Columns per accumulator row: four 512-bit vectors with AVX-512 (6 × 4 of its 32 registers), two
// 256-bit ones otherwise (6 × 2 of AVX2's 16).
#if defined(__AVX512F__)
constexpr int kPanelBytes = 256;
#else
constexpr int kPanelBytes = 64;
#endif

// C = A·B (accumulate = false) or C += A·B. A(r, k) = a[r·ars + k·acs].
template <typename T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t ars, int64_t acs, const T* b, int64_t ldb,
                 T* c, int64_t ldc, bool accumulate) {
  constexpr int kWide = kPanelBytes / sizeof(T);
  int64_t n = 0;
  for (; n + kWide <= N; n += kWide) panel<T, kWide>(M, K, a, ars, acs, b + n, ldb, c + n, ldc, accumulate);
  if (n + kWide / 2 <= N) {
    panel<T, kWide / 2>(M, K, a, ars, acs, b + n, ldb, c + n, ldc, accumulate);
    n += kWide / 2;
  }
  if (n < N) edge_columns<T, kWide / 2>(M, N - n, K, a, ars, acs, b + n, ldb, c + n, ldc, accumulate);
}

}  // namespace linspec::kernels::cpu::tile
