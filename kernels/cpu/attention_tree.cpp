// Tree verification for softmax attention on the CPU (see kernels/attention.h): each node's query against the
// committed keys and the nodes it sees, one (batch, head) pair per thread, softmax accumulated in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/backend.h"

namespace linspec::kernels::cpu {
namespace {

template <typename T>
void tree_forward(const TreeAttentionDims& dims, const T* q, const T* cache_k, const T* cache_v, const T* node_k,
                  const T* node_v, const int32_t* visible, T* out) {
  const int64_t B = dims.batch, Hq = dims.heads_q, Hkv = dims.heads_kv, P = dims.prefix, N = dims.nodes, d = dims.d;
  const int64_t ratio = Hq / Hkv;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kvh = b * Hkv + h / ratio;
      const T *K = cache_k + kvh * P * d, *V = cache_v + kvh * P * d;
      const T *NK = node_k + kvh * N * d, *NV = node_v + kvh * N * d;
      std::vector<double> score(static_cast<size_t>(P + N)), acc(static_cast<size_t>(d));
      std::vector<int64_t> seen;
      for (int64_t i = 0; i < N; ++i) {
        seen.clear();
        for (int64_t j = 0; j < N; ++j)
          if (visible[i * N + j]) seen.push_back(j);
        const int64_t n = P + static_cast<int64_t>(seen.size());
        auto key = [&](int64_t j) { return j < P ? K + j * d : NK + seen[j - P] * d; };
        auto val = [&](int64_t j) { return j < P ? V + j * d : NV + seen[j - P] * d; };
        const T* qi = q + ((b * Hq + h) * N + i) * d;
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const T* kj = key(j);
          double s = 0;
          for (int64_t c = 0; c < d; ++c) s += static_cast<double>(qi[c]) * kj[c];
          score[j] = s * dims.scale;
          mx = std::max(mx, score[j]);
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double denom = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double e = std::exp(score[j] - mx);
          denom += e;
          const T* vj = val(j);
          for (int64_t c = 0; c < d; ++c) acc[c] += e * vj[c];
        }
        T* o = out + ((b * Hq + h) * N + i) * d;
        for (int64_t c = 0; c < d; ++c) o[c] = static_cast<T>(acc[c] / denom);
      }
    }
}

}  // namespace

void fill_attention_tree(Backend& b) {
  b.f32.attention.tree_forward = &tree_forward<float>;
  b.f64.attention.tree_forward = &tree_forward<double>;
}

}  // namespace linspec::kernels::cpu
