// Tree verification shared by every mixer: parent-array checks, the default (unsupported) tree form, and the
// softmax tree: a KV cache plus a tree mask (node i sees every committed key and its own ancestors).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "attention/mixer.h"
#include "core/tensor_rows.h"

namespace linspec {

std::vector<int32_t> tree_node_depths(const std::vector<int32_t>& parent, const std::string& where) {
  std::vector<int32_t> depth(parent.size());
  for (size_t i = 0; i < parent.size(); ++i) {
    if (parent[i] < -1 || parent[i] >= static_cast<int32_t>(i))
      throw_input_error(where, ": parent[", i, "] = ", parent[i], " must be -1 (a root) or an earlier node");
    depth[i] = parent[i] < 0 ? 0 : depth[parent[i]] + 1;
  }
  return depth;
}

void check_accepted_path(const std::vector<int32_t>& parent, const std::vector<int32_t>& accepted,
                         const std::string& where) {
  for (size_t i = 0; i < accepted.size(); ++i) {
    const int32_t node = accepted[i];
    if (node < 0 || node >= static_cast<int32_t>(parent.size()))
      throw_input_error(where, ": node ", node, " is not in the tree of ", parent.size(), " nodes");
    const int32_t expected = i == 0 ? -1 : accepted[i - 1];
    if (parent[node] != expected)
      throw_input_error(where, ": node ", node, " has parent ", parent[node], ", the path needs ", expected,
                        " (accepted nodes must form a root-first chain)");
  }
}

Tensor AttentionMixer::tree(const AttentionState&, const Tensor&, const Tensor&, const Tensor&,
                            const std::vector<int32_t>&) const {
  throw_input_error("attention '", kind(), "' has no tree verification form");
}

void AttentionMixer::advance(AttentionState&, const Tensor&, const Tensor&, const std::vector<int32_t>&,
                             const std::vector<int32_t>&) const {
  throw_input_error("attention '", kind(), "' has no tree verification form");
}

namespace {

// Masked softmax over [committed keys, ancestor nodes] for every (batch, query head, node); accumulates in double.
template <typename T>
void softmax_tree(const T* q, const T* ck, const T* cv, const T* nk, const T* nv, T* out, int64_t B, int64_t Hq,
                  int64_t Hkv, int64_t P, int64_t N, int64_t d, const std::vector<std::vector<int32_t>>& ancestors) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const int64_t ratio = Hq / Hkv;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kvh = b * Hkv + h / ratio;
      const T* K = ck + kvh * P * d;
      const T* V = cv + kvh * P * d;
      const T* NK = nk + kvh * N * d;
      const T* NV = nv + kvh * N * d;
      std::vector<double> score(static_cast<size_t>(P + N)), acc(static_cast<size_t>(d));
      for (int64_t i = 0; i < N; ++i) {
        const T* qi = q + ((b * Hq + h) * N + i) * d;
        const auto& anc = ancestors[i];
        const int64_t n = P + static_cast<int64_t>(anc.size());
        auto key = [&](int64_t j) { return j < P ? K + j * d : NK + anc[j - P] * d; };
        auto val = [&](int64_t j) { return j < P ? V + j * d : NV + anc[j - P] * d; };
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const T* kj = key(j);
          double s = 0;
          for (int64_t c = 0; c < d; ++c) s += static_cast<double>(qi[c]) * kj[c];
          score[j] = s * scale;
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

// Rows `nodes` of x [B, H, N, d] in that order -> [B, H, n, d], on x's device.
Tensor gather_nodes(const Tensor& x, const std::vector<int32_t>& nodes) {
  const int64_t n = static_cast<int64_t>(nodes.size());
  Tensor out = Tensor::empty({x.size(0), x.size(1), n, x.size(3)}, x.dtype(), x.device());
  for (int64_t i = 0; i < n; ++i) write_rows(out, x.slice(2, nodes[i], nodes[i] + 1), i);
  return out;
}

const KVCache& as_cache(const AttentionState& s) {
  const auto* c = dynamic_cast<const KVCache*>(&s);
  LINSPEC_CHECK(c != nullptr, "softmax attention used with a state that is not a KV cache");
  return *c;
}

}  // namespace

Tensor SoftmaxAttention::tree(const AttentionState& state, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                              const std::vector<int32_t>& parent) const {
  const KVCache& cache = as_cache(state);
  const std::vector<int32_t> depth = tree_node_depths(parent, "softmax tree");
  LINSPEC_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && k_in.shape() == v_in.shape() && q_in.size(2) == k_in.size(2) &&
                    q_in.size(2) == static_cast<int64_t>(parent.size()) && q_in.size(1) == shape_.q_heads &&
                    k_in.size(1) == shape_.kv_heads,
                "softmax tree: q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), " for ", parent.size(),
                " nodes");
  if (q_in.device() != Device::CPU)  // the masked tree softmax below is host code (no device kernel yet)
    throw_input_error("softmax tree verification runs on the CPU only; this model is on ",
                      device_name(q_in.device()), " (run verify / speculative decoding with --device cpu)");
  const DType dt = cache.keys().dtype();
  Tensor q = q_in.to(dt).contiguous(), k = k_in.to(dt).contiguous(), v = v_in.to(dt).contiguous();
  Tensor ck = cache.keys(), cv = cache.values();
  const int64_t B = q.size(0), N = q.size(2), d = q.size(3), P = cache.position();
  std::vector<std::vector<int32_t>> ancestors(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    for (int32_t j = static_cast<int32_t>(i); j >= 0; j = parent[j]) ancestors[i].push_back(j);
    std::reverse(ancestors[i].begin(), ancestors[i].end());
  }
  Tensor out = Tensor::empty(q.shape(), dt);
  if (dt == DType::F64)
    softmax_tree<double>(q.data<double>(), ck.data<double>(), cv.data<double>(), k.data<double>(), v.data<double>(),
                         out.data<double>(), B, shape_.q_heads, shape_.kv_heads, P, N, d, ancestors);
  else
    softmax_tree<float>(q.data<float>(), ck.data<float>(), cv.data<float>(), k.data<float>(), v.data<float>(),
                        out.data<float>(), B, shape_.q_heads, shape_.kv_heads, P, N, d, ancestors);
  return out;
}

void SoftmaxAttention::advance(AttentionState& state, const Tensor& k, const Tensor& v,
                               const std::vector<int32_t>& parent, const std::vector<int32_t>& accepted) const {
  auto* cache = dynamic_cast<KVCache*>(&state);
  LINSPEC_CHECK(cache != nullptr, "softmax attention advanced with a state that is not a KV cache");
  LINSPEC_CHECK(k.dim() == 4 && k.shape() == v.shape() && k.size(2) == static_cast<int64_t>(parent.size()),
                "softmax advance: k / v must be [B, Hkv, N, d] for ", parent.size(), " nodes, got ",
                shape_str(k.shape()));
  check_accepted_path(parent, accepted, "softmax advance");
  if (accepted.empty()) return;
  cache->append(gather_nodes(k, accepted), gather_nodes(v, accepted));
}

}  // namespace linspec
