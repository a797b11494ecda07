// GEMMs on the GPU (see kernels/matmul.h). Row-major C = op(A) op(B) is computed as the column-major product
// Cᵀ = op(B)ᵀ op(A)ᵀ, so the operands are passed swapped and nothing is transposed in memory.
#include <cublasLt.h>

#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

int to_int(int64_t v, const char* what) {
  if (v > INT_MAX) throw std::invalid_argument(std::string("GEMM dimension too large for cuBLAS: ") + what);
  return static_cast<int>(v);
}

// cuBLAS view of a row-major problem: the column-major operand order (B first) with leading dims and batch strides.
struct ColumnMajor {
  cublasOperation_t op_first, op_second;  // for B, then A
  int m, n, k, ld_first, ld_second, ldc;
  long long stride_first, stride_second, stride_c;
  int batch;
};

ColumnMajor column_major(const GemmShape& s) {
  ColumnMajor c;
  c.m = to_int(s.n, "n"), c.n = to_int(s.m, "m"), c.k = to_int(s.k, "k");
  c.op_first = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  c.op_second = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  c.ld_first = to_int(s.trans_b ? s.k : s.n, "ldb");
  c.ld_second = to_int(s.trans_a ? s.m : s.k, "lda");
  c.ldc = c.m;
  c.stride_first = s.broadcast_b ? 0 : s.k * s.n;
  c.stride_second = s.m * s.k;
  c.stride_c = s.m * s.n;
  c.batch = to_int(s.batch, "batch");
  return c;
}

// True when there is nothing to multiply; handles the empty reduction (C = beta C) itself.
bool trivial(const GemmShape& s, void* c, size_t elem, float beta) {
  if (s.batch == 0 || s.m == 0 || s.n == 0) return true;
  if (s.k != 0) return false;
  if (beta == 0.f) check(cudaMemsetAsync(c, 0, elem * s.batch * s.m * s.n, stream()), "gemm (k = 0)");
  return true;
}

// ---- cuBLASLt plans for the bf16 path, cached by problem ----

cublasLtHandle_t lt_handle() {
  static cublasLtHandle_t h = [] {
    cublasLtHandle_t handle;
    check_blas(cublasLtCreate(&handle), "cublasLtCreate");
    return handle;
  }();
  return h;
}

void* workspace() {
  static void* w = cached_malloc(kWorkspaceBytes);  // kept for the life of the process
  return w;
}

uint32_t alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al /= 2;
  return al;
}

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t first = nullptr, second = nullptr, out = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
};

cublasLtMatrixLayout_t layout(cudaDataType_t type, int rows, int cols, int ld, int batch, long long stride) {
  cublasLtMatrixLayout_t l;
  check_blas(cublasLtMatrixLayoutCreate(&l, type, rows, cols, ld), "cublasLtMatrixLayoutCreate");
  const int32_t count = batch;
  const int64_t offset = stride;
  check_blas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)), "layout");
  check_blas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &offset, sizeof(offset)),
             "layout");
  return l;
}

LtPlan& lt_plan(const GemmShape& s, cudaDataType_t out_type, float beta, const void* a, const void* b, const void* c) {
  static std::mutex mu;
  static std::unordered_map<std::string, LtPlan> cache;
  const uint32_t al_a = alignment(a), al_b = alignment(b), al_c = alignment(c);
  const std::string key = std::to_string(s.batch) + "," + std::to_string(s.m) + "," + std::to_string(s.n) + "," +
                          std::to_string(s.k) + "," + std::to_string(s.trans_a) + std::to_string(s.trans_b) +
                          std::to_string(s.broadcast_b) + "," + std::to_string(static_cast<int>(out_type)) +
                          (beta != 0.f ? "+" : "=") + std::to_string(al_a) + "," + std::to_string(al_b) + "," +
                          std::to_string(al_c);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  const ColumnMajor cm = column_major(s);
  LtPlan p;
  check_blas(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  check_blas(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &cm.op_first, sizeof(cm.op_first)),
             "desc");
  check_blas(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &cm.op_second, sizeof(cm.op_second)),
             "desc");
  const bool tf = cm.op_first == CUBLAS_OP_T, ts = cm.op_second == CUBLAS_OP_T;
  p.first = layout(CUDA_R_16BF, tf ? cm.k : cm.m, tf ? cm.m : cm.k, cm.ld_first, cm.batch, cm.stride_first);
  p.second = layout(CUDA_R_16BF, ts ? cm.n : cm.k, ts ? cm.k : cm.n, cm.ld_second, cm.batch, cm.stride_second);
  p.out = layout(out_type, cm.m, cm.n, cm.ldc, cm.batch, cm.stride_c);

  cublasLtMatmulPreference_t pref;
  check_blas(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = kWorkspaceBytes;
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
             "preference");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_b, sizeof(al_b)),
             "preference");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_a, sizeof(al_a)),
             "preference");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c)),
             "preference");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof(al_c)),
             "preference");
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_handle(), p.op, p.first, p.second, p.out, p.out, pref, 1,
                                                           &result, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS && returned > 0) {
    p.algo = result.algo;
    p.has_algo = true;
  }
  return cache.emplace(key, p).first->second;
}

// bf16 × bf16 -> out_type (f32 or bf16) with f32 accumulation: cuBLASLt when it has an algorithm for the problem,
// cublasGemmStridedBatchedEx otherwise.
void gemm_bf16_any(const GemmShape& s, const uint16_t* a, const uint16_t* b, void* c, cudaDataType_t out_type,
                   float beta) {
  if (trivial(s, c, out_type == CUDA_R_32F ? 4 : 2, beta)) return;
  const float alpha = 1.f;
  LtPlan& p = lt_plan(s, out_type, beta, a, b, c);
  if (p.has_algo) {
    check_blas(cublasLtMatmul(lt_handle(), p.op, &alpha, b, p.first, a, p.second, &beta, c, p.out, c, p.out, &p.algo,
                              workspace(), kWorkspaceBytes, stream()),
               "cublasLtMatmul");
    return;
  }
  const ColumnMajor cm = column_major(s);
  check_blas(cublasGemmStridedBatchedEx(blas_handle(), cm.op_first, cm.op_second, cm.m, cm.n, cm.k, &alpha, b,
                                        CUDA_R_16BF, cm.ld_first, cm.stride_first, a, CUDA_R_16BF, cm.ld_second,
                                        cm.stride_second, &beta, c, out_type, cm.ldc, cm.stride_c, cm.batch,
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             "cublasGemmStridedBatchedEx (bf16)");
}

}  // namespace

void gemm_f32(const GemmShape& s, const float* a, const float* b, float* c, float beta) {
  if (trivial(s, c, sizeof(float), beta)) return;
  const ColumnMajor cm = column_major(s);
  const float alpha = 1.f;
  check_blas(cublasSgemmStridedBatched(blas_handle(), cm.op_first, cm.op_second, cm.m, cm.n, cm.k, &alpha, b,
                                       cm.ld_first, cm.stride_first, a, cm.ld_second, cm.stride_second, &beta, c, cm.ldc,
                                       cm.stride_c, cm.batch),
             "cublasSgemmStridedBatched");
}

void gemm_f64(const GemmShape& s, const double* a, const double* b, double* c, double beta) {
  if (trivial(s, c, sizeof(double), static_cast<float>(beta))) return;
  const ColumnMajor cm = column_major(s);
  const double alpha = 1.0;
  check_blas(cublasDgemmStridedBatched(blas_handle(), cm.op_first, cm.op_second, cm.m, cm.n, cm.k, &alpha, b,
                                       cm.ld_first, cm.stride_first, a, cm.ld_second, cm.stride_second, &beta, c, cm.ldc,
                                       cm.stride_c, cm.batch),
             "cublasDgemmStridedBatched");
}

void gemm_bf16(const GemmShape& s, const uint16_t* a, const uint16_t* b, float* c, float beta) {
  gemm_bf16_any(s, a, b, c, CUDA_R_32F, beta);
}

void gemm_bf16_out(const GemmShape& s, const uint16_t* a, const uint16_t* b, uint16_t* c, float beta) {
  gemm_bf16_any(s, a, b, c, CUDA_R_16BF, beta);
}

void gemm_f32_via_bf16(const GemmShape& s, const float* a, const float* b, float* c, float beta) {
  if (trivial(s, c, sizeof(float), beta)) return;
  const int64_t na = s.batch * s.m * s.k, nb = (s.broadcast_b ? 1 : s.batch) * s.k * s.n;
  Scratch<uint16_t> a16(na), b16(nb);
  f32_to_bf16(a, a16.get(), na);
  f32_to_bf16(b, b16.get(), nb);
  cuda::gemm_bf16(s, a16.get(), b16.get(), c, beta);  // qualified: ADL on GemmShape also finds cpu::gemm_bf16
}

void gemm_q8(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w, float* c);  // matmul_q8.cu
// matmul_weight_rows.cu
void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c);
void gemm_f32_weight(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c);

void fill_matmul(Backend& b) {
  b.matmul = {&gemm_f32, &gemm_bf16, &gemm_f32_via_bf16, &gemm_f64, &gemm_bf16_out, &gemm_q8, &gemm_bf16_weight,
              &gemm_f32_weight};
}

}  // namespace linspec::kernels::cuda
