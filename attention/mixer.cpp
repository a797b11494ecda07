// AttentionMixer's default batched step: one step() per sequence (model/decoder_layer.cpp's packed form calls it).
#include "attention/mixer.h"

#include "core/error.h"
#include "core/ops.h"

namespace linspec {

Tensor AttentionMixer::step_many(const std::vector<AttentionState*>& states, const Tensor& q, const Tensor& k,
                                 const Tensor& v) const {
  const int64_t N = static_cast<int64_t>(states.size());
  LINSPEC_CHECK(N >= 1 && q.dim() == 4 && q.size(0) == 1 && q.size(2) == N, "step_many: q must be [1, Hq, ", N,
                ", d] for ", N, " states, got ", shape_str(q.shape()));
  if (N == 1) return step(*states[0], q, k, v);
  std::vector<Tensor> outs;
  for (int64_t n = 0; n < N; ++n)
    outs.push_back(step(*states[n], ops::slice(q, 2, n, n + 1), ops::slice(k, 2, n, n + 1), ops::slice(v, 2, n, n + 1)));
  return ops::concat(outs, 2);
}

}  // namespace linspec
