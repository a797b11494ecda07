#include "serve/perplexity.h"

#include <chrono>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"

namespace linspec {

PerplexityResult evaluate_perplexity(const LlamaModel& model, const std::vector<int32_t>& all_ids,
                                     const PerplexityOptions& o) {
  if (o.ctx < 2) throw_input_error("--ctx ", o.ctx, ": must be at least 2");
  const int64_t stride = o.stride > 0 ? o.stride : o.ctx;
  if (stride > o.ctx) throw_input_error("--stride ", stride, ": must not exceed --ctx ", o.ctx);
  std::vector<int32_t> ids = all_ids;
  if (o.max_tokens > 0 && static_cast<int64_t>(ids.size()) > o.max_tokens) ids.resize(o.max_tokens);
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n < 2) throw_input_error("perplexity: the text has ", n, " token(s); at least 2 are needed");

  const auto t0 = std::chrono::steady_clock::now();
  NoGradGuard no_grad;
  PerplexityResult r;
  r.tokens = n;
  double nll_sum = 0;
  int64_t scored_until = 1;  // tokens [0, scored_until) are done (token 0 is never scored)
  for (int64_t begin = 0; scored_until < n; begin += stride) {
    const int64_t end = std::min(n, begin + o.ctx);
    const int64_t len = end - begin;
    if (len < 2) break;
    Tensor input = Tensor::empty({1, len - 1}, DType::I32);
    Tensor target = Tensor::empty({len - 1}, DType::I32);
    int64_t count = 0;
    for (int64_t t = 0; t + 1 < len; ++t) {
      input.data<int32_t>()[t] = ids[begin + t];
      const int64_t pos = begin + t + 1;  // the token predicted at this row
      const bool score = pos >= scored_until;
      target.data<int32_t>()[t] = score ? ids[pos] : ops::kIgnoreIndex;
      count += score;
    }
    if (count > 0) {
      Tensor logits = model.forward(input).reshape({len - 1, -1});
      nll_sum += ops::cross_entropy(logits, target.to(logits.device())).item() * static_cast<double>(count);
      r.scored_tokens += count;
    }
    scored_until = end;
    r.windows++;
    if (end == n) break;
  }
  r.mean_nll = nll_sum / static_cast<double>(r.scored_tokens);
  r.ppl = std::exp(r.mean_nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace linspec
