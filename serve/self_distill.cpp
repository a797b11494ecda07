#include "serve/self_distill.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "model/batched_decode.h"

namespace linspec {

std::vector<std::vector<int32_t>> corpus_prompts(const TokenSplit& split, int64_t count, int64_t len, uint64_t seed) {
  if (len < 1) throw_input_error("self-distill: the prompt length must be >= 1, got ", len);
  const int64_t n = static_cast<int64_t>(split.tokens.size());
  if (n < len) throw_input_error(split.source, ": ", n, " tokens, fewer than one prompt of ", len);
  Philox rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t at = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - len + 1)));
    out.emplace_back(split.tokens.begin() + at, split.tokens.begin() + at + len);
  }
  return out;
}

std::vector<std::vector<int32_t>> continue_prompts(const LlamaModel& model,
                                                   const std::vector<std::vector<int32_t>>& prompts,
                                                   const GenerationConfig& cfg, int64_t batch,
                                                   const std::function<void(int64_t, int64_t)>& progress) {
  cfg.sampling.validate();
  if (batch < 1) throw_input_error("self-distill: the batch must be >= 1, got ", batch);
  if (cfg.max_new_tokens < 0) throw_input_error("self-distill: max_new_tokens must be >= 0");
  NoGradGuard no_grad;
  const int64_t V = model.config().vocab_size, N = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int32_t>> out(prompts.begin(), prompts.end());
  if (cfg.max_new_tokens == 0) return out;
  for (int64_t first = 0; first < N; first += batch) {
    const int64_t B = std::min(batch, N - first);
    std::vector<DecodeState> states;
    std::vector<Philox> rngs;
    std::vector<std::vector<int32_t>> group;
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = prompts[first + b];
      if (p.empty()) throw_input_error("self-distill: prompt ", first + b, " is empty");
      states.push_back(model.new_decode_state(1, static_cast<int64_t>(p.size()) + cfg.max_new_tokens + 1));
      rngs.push_back(Philox(cfg.sampling.seed).fork(static_cast<uint64_t>(first + b)));
      group.push_back(p);
    }
    std::vector<int64_t> live(B);
    for (int64_t b = 0; b < B; ++b) live[b] = b;
    std::vector<DecodeState*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    Tensor logits = prefill_batched(model, ptrs, group);  // [B, V]
    for (int64_t step = 0; !live.empty(); ++step) {
      const Tensor rows = host_logit_rows(logits, V);
      std::vector<int64_t> next_live;
      std::vector<DecodeState*> next_states;
      std::vector<int32_t> next_ids;
      for (size_t j = 0; j < live.size(); ++j) {
        const int64_t b = live[j];
        const int32_t tok = choose_token(rows.data<float>() + static_cast<int64_t>(j) * V, V, cfg.sampling, rngs[b]);
        out[first + b].push_back(tok);
        const bool stop = std::find(cfg.stop_ids.begin(), cfg.stop_ids.end(), tok) != cfg.stop_ids.end();
        if (stop || step + 1 >= cfg.max_new_tokens) continue;
        next_live.push_back(b), next_states.push_back(&states[b]), next_ids.push_back(tok);
      }
      live = std::move(next_live);
      if (!live.empty()) logits = decode_batched(model, next_states, next_ids);
    }
    if (progress) progress(first + B, N);
  }
  return out;
}

TokenShards self_distill(const LlamaModel& model, const TokenShards& source, const SelfDistillConfig& cfg,
                         const std::function<void(int64_t, int64_t)>& progress) {
  const TokenSplit& val_source = source.val.tokens.empty() ? source.train : source.val;
  const auto train_prompts = corpus_prompts(source.train, cfg.train_sequences, cfg.prompt_len, cfg.generation.sampling.seed);
  const auto val_prompts = corpus_prompts(val_source, cfg.val_sequences, cfg.prompt_len, cfg.generation.sampling.seed + 1);
  std::vector<std::vector<int32_t>> all = train_prompts;
  all.insert(all.end(), val_prompts.begin(), val_prompts.end());
  const auto docs = continue_prompts(model, all, cfg.generation, cfg.batch, progress);
  TokenShards out;
  out.tokenizer_fingerprint = source.tokenizer_fingerprint;
  out.sources = {"self-distilled continuations of " + source.train.source};
  for (size_t i = 0; i < docs.size(); ++i) {
    TokenSplit& split = i < train_prompts.size() ? out.train : out.val;
    split.doc_offsets.push_back(split.tokens.size());
    split.tokens.insert(split.tokens.end(), docs[i].begin(), docs[i].end());
  }
  return out;
}

}  // namespace linspec
