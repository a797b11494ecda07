// causal_attention: flash-attention forward/backward through kernels/cpu/attention.cpp.
#include <cmath>

#include "core/ops/dispatch.h"

namespace linspec::ops {
namespace {
namespace k = kernels;

k::AttentionDims attention_dims(const Tensor& q, const Tensor& key, const Tensor& v, double scale) {
  LINSPEC_CHECK(q.dim() == 4 && key.dim() == 4 && v.dim() == 4, "causal_attention: q, k, v must be [B, H, T, d], got ",
                shape_str(q.shape()), ", ", shape_str(key.shape()), ", ", shape_str(v.shape()));
  LINSPEC_CHECK(key.shape() == v.shape(), "causal_attention: k ", shape_str(key.shape()), " and v ",
                shape_str(v.shape()), " differ");
  k::AttentionDims a;
  a.batch = q.size(0), a.heads_q = q.size(1), a.t = q.size(2), a.d = q.size(3);
  a.heads_kv = key.size(1), a.s = key.size(2);
  LINSPEC_CHECK(key.size(0) == a.batch && key.size(3) == a.d, "causal_attention: q ", shape_str(q.shape()), " and k ",
                shape_str(key.shape()), " disagree on batch or head dim");
  LINSPEC_CHECK(a.heads_kv > 0 && a.heads_q % a.heads_kv == 0, "causal_attention: ", a.heads_q,
                " query heads are not a multiple of ", a.heads_kv, " kv heads");
  LINSPEC_CHECK(a.s >= a.t, "causal_attention: fewer keys (", a.s, ") than queries (", a.t, ")");
  a.scale = scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(a.d));
  LINSPEC_CHECK(a.scale > 0, "causal_attention: scale must be positive, got ", scale);
  // f64 is the gradient-check path: tiny tiles (and unequal ones) so short test sequences cross many tile
  // boundaries; f32 uses tiles that fill the AVX-512 micro-kernels.
  if (q.dtype() == DType::F64) a.block_q = 4, a.block_k = 3;
  return a;
}
}  // namespace

Tensor causal_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale) {
  detail::check_float(q_in, "causal_attention", "q");
  detail::check_float(k_in, "causal_attention", "k");
  detail::check_float(v_in, "causal_attention", "v");
  detail::check_same_dtype(q_in, k_in, "causal_attention");
  detail::check_same_dtype(q_in, v_in, "causal_attention");
  detail::backend_of("causal_attention", {&q_in, &k_in, &v_in});
  const k::AttentionDims a = attention_dims(q_in, k_in, v_in, scale);
  Tensor q = q_in.contiguous(), key = k_in.contiguous(), v = v_in.contiguous();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = Tensor::empty({a.batch, a.heads_q, a.t}, q.dtype(), q.device());
  detail::dispatch_float(q.dtype(), "causal_attention", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(q).attention.causal_forward, "causal_attention_forward", q)(
        a, q.device_data<T>(), key.device_data<T>(), v.device_data<T>(), out.device_data<T>(), lse.device_data<T>());
  });

  if (any_requires_grad({&q_in, &k_in, &v_in})) {
    // Saved: inputs, output and per-row logsumexp; probabilities are recomputed tile by tile.
    Tensor saved_out = out.detach();
    record_op(out, [q_in, k_in, v_in, q = q.detach(), key = key.detach(), v = v.detach(), saved_out, lse,
                    a](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      Tensor dq = Tensor::empty(q.shape(), q.dtype(), q.device());
      Tensor dk = Tensor::empty(key.shape(), key.dtype(), key.device()),
             dv = Tensor::empty(v.shape(), v.dtype(), v.device());
      detail::dispatch_float(q.dtype(), "causal_attention backward", [&](auto t) {
        using T = decltype(t);
        detail::kernel(detail::float_kernels<T>(q).attention.causal_backward, "causal_attention_backward", q)(
            a, q.device_data<T>(), key.device_data<T>(), v.device_data<T>(), saved_out.device_data<T>(),
            lse.device_data<T>(), g.device_data<T>(), dq.device_data<T>(), dk.device_data<T>(), dv.device_data<T>());
      });
      accumulate_grad(q_in, dq);
      accumulate_grad(k_in, dk);
      accumulate_grad(v_in, dv);
    });
  }
  return out;
}

Tensor tree_attention(const Tensor& q_in, const Tensor& cache_k_in, const Tensor& cache_v_in, const Tensor& node_k_in,
                      const Tensor& node_v_in, const std::vector<int32_t>& parent) {
  for (const Tensor* t : {&q_in, &cache_k_in, &cache_v_in, &node_k_in, &node_v_in}) {
    detail::check_float(*t, "tree_attention", "q / k / v");
    detail::check_same_dtype(q_in, *t, "tree_attention");
  }
  detail::backend_of("tree_attention", {&q_in, &cache_k_in, &cache_v_in, &node_k_in, &node_v_in});
  const int64_t N = static_cast<int64_t>(parent.size());
  LINSPEC_CHECK(q_in.dim() == 4 && node_k_in.dim() == 4 && cache_k_in.dim() == 4 && q_in.size(2) == N &&
                    node_k_in.shape() == node_v_in.shape() && cache_k_in.shape() == cache_v_in.shape() &&
                    node_k_in.size(2) == N && node_k_in.size(0) == q_in.size(0) && node_k_in.size(3) == q_in.size(3) &&
                    cache_k_in.size(0) == q_in.size(0) && cache_k_in.size(1) == node_k_in.size(1) &&
                    cache_k_in.size(3) == q_in.size(3),
                "tree_attention: q ", shape_str(q_in.shape()), ", cache k ", shape_str(cache_k_in.shape()),
                ", node k ", shape_str(node_k_in.shape()), " for ", N, " nodes");
  k::TreeAttentionDims a;
  a.batch = q_in.size(0), a.heads_q = q_in.size(1), a.heads_kv = node_k_in.size(1);
  a.prefix = cache_k_in.size(2), a.nodes = N, a.d = q_in.size(3);
  LINSPEC_CHECK(a.heads_kv > 0 && a.heads_q % a.heads_kv == 0, "tree_attention: ", a.heads_q,
                " query heads are not a multiple of ", a.heads_kv, " kv heads");
  a.scale = 1.0 / std::sqrt(static_cast<double>(a.d));
  std::vector<int32_t> visible(static_cast<size_t>(N * N), 0);
  for (int64_t i = 0; i < N; ++i) {
    LINSPEC_CHECK(parent[i] >= -1 && parent[i] < i, "tree_attention: parent[", i, "] = ", parent[i],
                  " must be -1 or an earlier node");
    for (int64_t j = i; j >= 0; j = parent[j]) visible[i * N + j] = 1;
  }
  const Tensor mask = Tensor::from_vector(visible, {N, N}).to(q_in.device());
  Tensor q = q_in.contiguous(), ck = cache_k_in.contiguous(), cv = cache_v_in.contiguous();
  Tensor nk = node_k_in.contiguous(), nv = node_v_in.contiguous();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  detail::dispatch_float(q.dtype(), "tree_attention", [&](auto t) {
    using T = decltype(t);
    detail::kernel(detail::float_kernels<T>(q).attention.tree_forward, "tree_attention_forward", q)(
        a, q.device_data<T>(), ck.device_data<T>(), cv.device_data<T>(), nk.device_data<T>(), nv.device_data<T>(),
        mask.device_data<int32_t>(), out.device_data<T>());
  });
  return out;
}

}  // namespace linspec::ops
