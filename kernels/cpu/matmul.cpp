// GEMM through oneDNN's matmul primitive (AMX / AVX-512-BF16 / AVX-512 chosen by oneDNN at run time).
#include "kernels/backend.h"
#include <dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"

namespace linspec::kernels::cpu {
namespace {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

using dt = dnnl::memory::data_type;

struct Cached {
  dnnl::matmul prim;
  dnnl::memory::desc a_md, b_md, c_md;
};

// Primitive creation costs far more than a small GEMM, so primitives are cached by shape. The cache is
// per thread: executing one primitive from several OpenMP threads at once shares its library-managed
// scratchpad and gives wrong results (seen with oneDNN 2.6 when kernels call GEMMs inside parallel regions).
Cached& get_primitive(const GemmShape& s, dt in_type, float beta) {
  static thread_local std::unordered_map<std::string, Cached> cache;
  std::string key = std::to_string(static_cast<int>(in_type)) + ":" + std::to_string(s.batch) + "," +
                    std::to_string(s.m) + "," + std::to_string(s.n) + "," + std::to_string(s.k) + "," +
                    std::to_string(s.trans_a) + std::to_string(s.trans_b) + std::to_string(s.broadcast_b) +
                    (beta != 0.f ? "+" : "=");
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;

  using dims = dnnl::memory::dims;
  const int64_t M = s.m, N = s.n, K = s.k, B = s.batch, Bb = s.broadcast_b ? 1 : s.batch;
  dims a_strides = s.trans_a ? dims{M * K, 1, M} : dims{M * K, K, 1};
  dims b_strides = s.trans_b ? dims{N * K, 1, K} : dims{N * K, N, 1};
  dnnl::memory::desc a_md({B, M, K}, in_type, a_strides);
  dnnl::memory::desc b_md({Bb, K, N}, in_type, b_strides);
  dnnl::memory::desc c_md({B, M, N}, dt::f32, dims{M * N, N, 1});
  dnnl::primitive_attr attr;
  if (beta != 0.f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  dnnl::matmul::desc desc(a_md, b_md, c_md);
  dnnl::matmul::primitive_desc pd(desc, attr, engine());
  Cached c{dnnl::matmul(pd), a_md, b_md, c_md};
  return cache.emplace(key, std::move(c)).first->second;
}

void run(const GemmShape& s, dt in_type, const void* a, const void* b, float* c, float beta) {
  if (s.batch == 0 || s.m == 0 || s.n == 0) return;
  if (s.k == 0) {  // empty reduction: C = beta * C (C may be uninitialised when beta == 0)
    for (int64_t i = 0; i < s.batch * s.m * s.n; ++i) c[i] = beta == 0.f ? 0.f : beta * c[i];
    return;
  }
  Cached& p = get_primitive(s, in_type, beta);
  dnnl::memory am(p.a_md, engine(), const_cast<void*>(a));
  dnnl::memory bm(p.b_md, engine(), const_cast<void*>(b));
  dnnl::memory cm(p.c_md, engine(), c);
  static thread_local dnnl::stream stream(engine());
  p.prim.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  stream.wait();
}

}  // namespace

void gemm_f32(const GemmShape& s, const float* a, const float* b, float* c, float beta) {
  run(s, dt::f32, a, b, c, beta);
}

void gemm_bf16(const GemmShape& s, const uint16_t* a, const uint16_t* b, float* c, float beta) {
  run(s, dt::bf16, a, b, c, beta);
}

void gemm_f32_via_bf16(const GemmShape& s, const float* a, const float* b, float* c, float beta) {
  static thread_local std::vector<uint16_t> abuf, bbuf;
  const size_t na = static_cast<size_t>(s.batch * s.m * s.k);
  const size_t nb = static_cast<size_t>((s.broadcast_b ? 1 : s.batch) * s.n * s.k);
  abuf.resize(na);
  bbuf.resize(nb);
  convert_floats(a, DType::F32, abuf.data(), DType::BF16, na);
  convert_floats(b, DType::F32, bbuf.data(), DType::BF16, nb);
  run(s, dt::bf16, abuf.data(), bbuf.data(), c, beta);
}

void gemm_f64(const GemmShape& s, const double* a, const double* b, double* c, double beta) {
  const int64_t M = s.m, N = s.n, K = s.k;
  // Gradient checks run thousands of tiny GEMMs: a parallel region per call would dominate them.
  const bool parallel = s.batch * M * N * K > (1 << 15);
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t bi = 0; bi < s.batch; ++bi)
    for (int64_t i = 0; i < M; ++i) {
      const double* A = a + bi * M * K;
      const double* Bm = b + (s.broadcast_b ? 0 : bi * K * N);
      double* C = c + bi * M * N + i * N;
      for (int64_t j = 0; j < N; ++j) C[j] = beta == 0.0 ? 0.0 : beta * C[j];
      for (int64_t kk = 0; kk < K; ++kk) {
        const double av = s.trans_a ? A[kk * M + i] : A[i * K + kk];
        if (s.trans_b)
          for (int64_t j = 0; j < N; ++j) C[j] += av * Bm[j * K + kk];
        else
          for (int64_t j = 0; j < N; ++j) C[j] += av * Bm[kk * N + j];
      }
    }
}

void gemm_q8(int64_t m, int64_t n, int64_t k, const float* a, const uint8_t* w, float* c);  // matmul_q8.cpp
// matmul_weight_rows.cpp
void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* a, const uint16_t* w, float* c);
void gemm_f32_weight(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* c);

void fill_matmul(Backend& b) {
  b.matmul = {&gemm_f32, &gemm_bf16, &gemm_f32_via_bf16, &gemm_f64, nullptr, &gemm_q8, &gemm_bf16_weight, &gemm_f32_weight};
}

}  // namespace linspec::kernels::cpu
