#include "model/generation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace linspec {

void SamplingConfig::validate() const {
  if (!(temperature >= 0.0)) throw_input_error("sampling: temperature must be >= 0, got ", temperature);
  if (top_k < 0) throw_input_error("sampling: top_k must be >= 0, got ", top_k);
  if (!(top_p > 0.0 && top_p <= 1.0)) throw_input_error("sampling: top_p must be in (0, 1], got ", top_p);
}

namespace {
int32_t argmax(const float* logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}
}  // namespace

std::vector<double> sampling_distribution(const float* logits, int64_t vocab, const SamplingConfig& cfg) {
  cfg.validate();
  if (cfg.temperature == 0.0) {
    std::vector<double> p(vocab, 0.0);
    p[argmax(logits, vocab)] = 1.0;
    return p;
  }
  const double inv_t = 1.0 / cfg.temperature;
  const int64_t k = cfg.top_k > 0 ? std::min(cfg.top_k, vocab) : vocab;
  const float top = logits[argmax(logits, vocab)];
  // Candidates by logit (descending, ties by id). Only the prefix the cuts can reach is sorted: the top k, or with
  // no top-k a prefix grown until it holds the nucleus (sorting all 49K tokens for every sampled token cost ~4 ms).
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < vocab) std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
  // Softmax weights of logits / T over the candidates (max-subtracted), zero elsewhere.
  std::vector<double> w(vocab, 0.0);
  double total = 0;
  for (int64_t i = 0; i < k; ++i) {
    const int32_t t = order[i];
    total += w[t] = std::exp((static_cast<double>(logits[t]) - top) * inv_t);
  }
  // Nucleus: the shortest prefix whose mass reaches top_p (always at least one token).
  int64_t keep = k;
  if (cfg.top_p < 1.0) {
    int64_t sorted = k < vocab ? k : 0;
    double mass = 0;
    for (int64_t i = 0; i < k; ++i) {
      if (i == sorted) {  // grow the sorted prefix (only without top-k)
        const int64_t next = std::min(vocab, std::max<int64_t>(256, 4 * sorted));
        std::partial_sort(order.begin() + sorted, order.begin() + next, order.end(), better);
        sorted = next;
      }
      mass += w[order[i]] / total;
      if (mass >= cfg.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (keep == k) {  // no nucleus cut: every candidate, no order needed
    for (double& v : w) v /= total;
    return w;
  }
  std::vector<double> p(vocab, 0.0);
  double kept = 0;
  for (int64_t i = 0; i < keep; ++i) kept += w[order[i]];
  for (int64_t i = 0; i < keep; ++i) p[order[i]] = w[order[i]] / kept;
  return p;
}

int32_t choose_token(const float* logits, int64_t vocab, const SamplingConfig& cfg, Philox& rng) {
  if (cfg.temperature == 0.0) return argmax(logits, vocab);
  const std::vector<double> p = sampling_distribution(logits, vocab, cfg);
  // Inverse CDF with one uniform; the last token with non-zero mass absorbs rounding.
  const double u = rng.uniform();
  double cum = 0;
  int32_t last = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (p[i] <= 0) continue;
    last = static_cast<int32_t>(i);
    cum += p[i];
    if (u < cum) return last;
  }
  return last;
}

Tensor host_logit_rows(const Tensor& logits, int64_t vocab) {
  return logits.to(DType::F32).contiguous().to(Device::CPU).view({-1, vocab});
}

GenerationResult generate(const LlamaModel& model, const std::vector<int32_t>& prompt, const GenerationConfig& cfg) {
  cfg.sampling.validate();
  if (prompt.empty()) throw_input_error("generate: the prompt is empty");
  if (cfg.max_new_tokens < 0) throw_input_error("generate: max_new_tokens must be >= 0");
  GenerationResult out;
  if (cfg.max_new_tokens == 0) return out;

  const int64_t vocab = model.config().vocab_size;
  DecodeState state = model.new_decode_state(1, static_cast<int64_t>(prompt.size()) + cfg.max_new_tokens);
  Philox rng(cfg.sampling.seed);
  Tensor logits = model.decode(state, Tensor::from_vector(prompt, {1, static_cast<int64_t>(prompt.size())}), true);
  for (int64_t step = 0; step < cfg.max_new_tokens; ++step) {
    const Tensor row = host_logit_rows(logits, vocab);
    const int32_t tok = choose_token(row.data<float>(), vocab, cfg.sampling, rng);
    out.tokens.push_back(tok);
    if (std::find(cfg.stop_ids.begin(), cfg.stop_ids.end(), tok) != cfg.stop_ids.end()) {
      out.stopped = true;
      break;
    }
    if (step + 1 < cfg.max_new_tokens)
      logits = model.decode(state, Tensor::from_vector(std::vector<int32_t>{tok}, {1, 1}), true);
  }
  return out;
}

}  // namespace linspec
