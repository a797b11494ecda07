// Continuous batching: decode_batched rows equal single-sequence decode bit for bit, and the scheduler gives every
// request exactly generate()'s output while sequences join and leave the running batch.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "core/autograd.h"
#include "model/batched_decode.h"
#include "model/generation.h"
#include "serve/http/scheduler.h"
#include "serve/speculative.h"
#include "serve/tree.h"
#include "serve_test_util.h"

namespace linspec {
namespace {

using namespace std::chrono_literals;
using serve::Scheduler;
using serve::Sequence;
using serve::SequenceEvent;
using serve::SequenceRequest;

std::vector<int32_t> prompt_of(int64_t len, uint64_t seed, int64_t vocab) {
  return testing::random_ids(1, len, vocab, seed).to_vector<int32_t>();
}

// The batched passes' cases: f32 weights on three mixers; bf16 and int8 (fused q/k/v and gate/up GEMMs) on aug.
const std::vector<std::pair<std::string, DType>> kBatchCases = {
    {"aug", DType::F32}, {"softmax", DType::F32}, {"hedgehog", DType::F32}, {"aug", DType::Q8}, {"aug", DType::BF16}};

LlamaModel case_model(const std::string& preset, DType weights) {
  LlamaModel m = testing::serve_model(3, preset);
  m.set_inference_weights(weights);
  return m;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::string text, finish_reason;
};

Collected collect(Sequence& s) {
  Collected c;
  SequenceEvent e;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!s.next(e, 100ms)) continue;
    c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
    c.text += e.text;
    if (e.finished) {
      c.finish_reason = e.finish_reason;
      return c;
    }
  }
  ADD_FAILURE() << "sequence did not finish";
  return c;
}

TEST(BatchedDecode, RowsEqualSingleSequenceDecodeExactly) {
  for (const auto& [preset, weights] : kBatchCases) {
    const LlamaModel m = case_model(preset, weights);
    NoGradGuard no_grad;
    const int64_t V = m.config().vocab_size;
    // Five sequences at different positions (prompt lengths 1..13), one batched state and one reference state each.
    std::vector<DecodeState> batched, single;
    std::vector<int32_t> last;
    for (int64_t b = 0; b < 5; ++b) {
      const auto p = prompt_of(1 + 3 * b, 10 + b, V);
      for (auto* states : {&batched, &single}) {
        states->push_back(m.new_decode_state(1, 64));
        m.decode(states->back(), Tensor::from_vector(p, {1, static_cast<int64_t>(p.size())}), true);
      }
      last.push_back(p.back());
    }
    for (int step = 0; step < 8; ++step) {
      // Sequence 1 leaves after step 3: the batch shrinks, the others must not notice.
      std::vector<DecodeState*> states;
      std::vector<int32_t> ids;
      std::vector<int64_t> who;
      for (int64_t b = 0; b < 5; ++b) {
        if (b == 1 && step > 3) continue;
        states.push_back(&batched[b]), ids.push_back(last[b]), who.push_back(b);
      }
      const auto rows = decode_batched(m, states, ids).to_vector<float>();
      ASSERT_EQ(rows.size(), who.size() * V);
      for (size_t i = 0; i < who.size(); ++i) {
        const int64_t b = who[i];
        const auto ref =
            m.decode(single[b], Tensor::from_vector(std::vector<int32_t>{last[b]}, {1, 1}), true).to_vector<float>();
        const std::vector<float> row(rows.begin() + i * V, rows.begin() + (i + 1) * V);
        ASSERT_EQ(row, ref) << preset << " " << dtype_name(weights) << " sequence " << b << " step " << step;
        last[b] = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      }
    }
  }
}

TEST(BatchedPrefill, RowsEqualSingleSequenceDecodeExactly) {
  // Prompts of 1..25 tokens in one pass, from empty states and again after them (a chunk at positions > 0): each
  // row equals LlamaModel::decode's last-position logits on that state alone, for every weight format.
  for (const auto& [preset, weights] : kBatchCases) {
    const LlamaModel m = case_model(preset, weights);
    NoGradGuard no_grad;
    const int64_t V = m.config().vocab_size;
    std::vector<DecodeState> batched, single;
    for (int64_t b = 0; b < 4; ++b) batched.push_back(m.new_decode_state(1, 96)), single.push_back(m.new_decode_state(1, 96));
    std::vector<DecodeState*> ptrs;
    for (auto& s : batched) ptrs.push_back(&s);
    for (int chunk = 0; chunk < 2; ++chunk) {
      std::vector<std::vector<int32_t>> prompts;
      for (int64_t b = 0; b < 4; ++b) prompts.push_back(prompt_of(1 + 8 * b - chunk * b, 60 + 10 * chunk + b, V));
      const auto rows = prefill_batched(m, ptrs, prompts).to_vector<float>();
      ASSERT_EQ(rows.size(), 4 * static_cast<size_t>(V));
      for (int64_t b = 0; b < 4; ++b) {
        const int64_t T = static_cast<int64_t>(prompts[b].size());
        const auto ref = m.decode(single[b], Tensor::from_vector(prompts[b], {1, T}), true).to_vector<float>();
        ASSERT_EQ(std::vector<float>(rows.begin() + b * V, rows.begin() + (b + 1) * V), ref)
            << preset << " " << dtype_name(weights) << " sequence " << b << " chunk " << chunk;
        ASSERT_EQ(batched[b].position(), single[b].position());
      }
    }
  }
}

TEST(BatchedVerify, RowsEqualSingleSequenceVerifyAndAdvanceExactly) {
  // Four sequences at different positions verify trees of different shapes in one pass (a branching tree, a chain,
  // the root alone, no tree): every row equals verify_tree_hidden on that sequence alone, and committing a path
  // after the batched pass leaves the state the single pass leaves. Rounds of up to 4 new tokens cross aug's group
  // boundaries (group size 4).
  const std::vector<std::vector<int32_t>> shapes = {{-1, 0, 0, 1, 2}, {-1, 0, 1, 2}, {-1}, {}};
  for (const auto& [preset, weights] : kBatchCases) {
    const LlamaModel m = case_model(preset, weights);
    NoGradGuard no_grad;
    const int64_t V = m.config().vocab_size, D = m.config().hidden_size;
    std::vector<DecodeState> batched, single;
    for (int64_t b = 0; b < 4; ++b) {
      const auto p = prompt_of(2 + 3 * b, 20 + b, V);
      for (auto* states : {&batched, &single}) {
        states->push_back(m.new_decode_state(1, 64));
        m.decode(states->back(), Tensor::from_vector(p, {1, static_cast<int64_t>(p.size())}), true);
      }
    }
    for (int round = 0; round < 4; ++round) {
      std::vector<DecodeState*> states;
      std::vector<std::vector<int32_t>> ids, parents;
      for (int64_t b = 0; b < 4; ++b) {
        states.push_back(&batched[b]);
        parents.push_back(shapes[(b + round) % shapes.size()]);
        ids.push_back(prompt_of(std::max<int64_t>(parents.back().size(), 1), 100 * round + b, V));
        ids.back().resize(parents.back().size());
      }
      const auto rows = verify_trees_hidden(m, states, ids, parents).to_vector<float>();
      size_t offset = 0;
      for (int64_t b = 0; b < 4; ++b) {
        const int64_t n = static_cast<int64_t>(ids[b].size());
        const auto ref = m.verify_tree_hidden(single[b], Tensor::from_vector(ids[b], {1, n}), parents[b]);
        const std::vector<float> got(rows.begin() + offset * D, rows.begin() + (offset + n) * D);
        ASSERT_EQ(got, ref.to_vector<float>()) << preset << " " << dtype_name(weights) << " sequence " << b
                                               << " round " << round;
        offset += n;
        // Commit the deepest path (node n−1's ancestry) on both states.
        std::vector<int32_t> path;
        for (int32_t i = static_cast<int32_t>(n) - 1; i >= 0; i = parents[b][i]) path.insert(path.begin(), i);
        const Tensor t = Tensor::from_vector(ids[b], {1, n});
        m.advance(batched[b], t, parents[b], path);
        m.advance(single[b], t, parents[b], path);
        ASSERT_EQ(batched[b].position(), single[b].position());
      }
      ASSERT_EQ(offset * D, rows.size());
    }
    for (int64_t b = 0; b < 4; ++b) {  // the committed states decode alike
      const Tensor next = Tensor::from_vector(std::vector<int32_t>{7}, {1, 1});
      ASSERT_EQ(m.decode(batched[b], next, true).to_vector<float>(), m.decode(single[b], next, true).to_vector<float>())
          << preset << " " << dtype_name(weights) << " sequence " << b;
    }
  }
}

TEST(BatchedDecode, RefusesBadInput) {
  const LlamaModel m = testing::serve_model();
  DecodeState s = m.new_decode_state(1, 8), two = m.new_decode_state(2, 8);
  EXPECT_ANY_THROW(decode_batched(m, {&s, &s}, {1, 2}));
  EXPECT_ANY_THROW(decode_batched(m, {&two}, {1}));
  EXPECT_ANY_THROW(decode_batched(m, {&s}, {1, 2}));
  EXPECT_ANY_THROW(prefill_batched(m, {&s}, {{}}));  // an empty prompt
  EXPECT_ANY_THROW(prefill_batched(m, {&s, &s}, {{1}, {2}}));
  EXPECT_ANY_THROW(verify_trees_hidden(m, {&s, &s}, {{1}, {2}}, {{-1}, {-1}}));
  EXPECT_ANY_THROW(verify_trees_hidden(m, {&two}, {{1}}, {{-1}}));
  EXPECT_ANY_THROW(verify_trees_hidden(m, {&s}, {{1, 2}}, {{-1}}));   // ids without parents
  EXPECT_ANY_THROW(verify_trees_hidden(m, {&s}, {{1, 2}}, {{-1, 1}}));  // a node its own parent
  EXPECT_ANY_THROW(verify_trees_hidden(m, {&s}, {{1}, {2}}, {{-1}}));  // two trees for one state
}

class SchedulerTest : public ::testing::Test {
 protected:
  LlamaModel model = testing::serve_model();
  std::unique_ptr<Tokenizer> tok = make_tokenizer(testing::serve_tokenizer_data());

  SequenceRequest request(std::vector<int32_t> prompt, int64_t max_new, double temperature = 0.0, uint64_t seed = 0) {
    SequenceRequest r;
    r.prompt = std::move(prompt);
    r.gen.max_new_tokens = max_new;
    r.gen.sampling.temperature = temperature;
    r.gen.sampling.seed = seed;
    r.gen.stop_ids = {tok->eos()};
    return r;
  }
};

TEST_F(SchedulerTest, EveryRequestGetsItsOwnGreedyOutputWhileTheBatchChanges) {
  Scheduler sched(model, *tok, {.max_batch = 3});
  const int64_t V = model.config().vocab_size;
  std::vector<std::shared_ptr<Sequence>> seqs;
  std::vector<GenerationResult> want;
  std::vector<SequenceRequest> requests;
  for (int i = 0; i < 8; ++i) {
    // Different prompt lengths and output lengths: sequences leave at different steps and queued ones take their
    // slots (max_batch 3 < 8 requests).
    requests.push_back(request(prompt_of(2 + 3 * i, 100 + i, V - 1), 5 + 4 * (i % 3)));
    want.push_back(generate(model, requests.back().prompt, requests.back().gen));
  }
  // Submitted back to back (the references first): the engine must find several waiting, or nothing is batched.
  for (auto& r : requests) seqs.push_back(sched.submit(std::move(r)));
  for (int i = 0; i < 8; ++i) {
    const Collected c = collect(*seqs[i]);
    EXPECT_EQ(c.tokens, want[i].tokens) << "request " << i;
    EXPECT_EQ(c.text, tok->decode(want[i].tokens, {.skip_special = true})) << "request " << i;
    EXPECT_EQ(c.finish_reason, want[i].stopped ? "stop" : "length");
  }
  EXPECT_GT(sched.peak_batch(), 1);
  EXPECT_LE(sched.peak_batch(), 3);
  sched.wait_idle();
  EXPECT_EQ(sched.running(), 0);
  EXPECT_EQ(sched.queued(), 0);
}

TEST_F(SchedulerTest, SampledOutputEqualsGenerateWithTheSameSeed) {
  Scheduler sched(model, *tok, {.max_batch = 4});
  const int64_t V = model.config().vocab_size;
  std::vector<std::shared_ptr<Sequence>> seqs;
  std::vector<GenerationResult> want;
  for (int i = 0; i < 4; ++i) {
    auto r = request(prompt_of(4 + i, 200 + i, V - 1), 12, 0.9, 1000 + i);
    r.gen.sampling.top_k = 40;
    want.push_back(generate(model, r.prompt, r.gen));
    seqs.push_back(sched.submit(std::move(r)));
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(collect(*seqs[i]).tokens, want[i].tokens) << i;
}

TEST_F(SchedulerTest, StopStringEndsTheSequenceAndIsNotReturned) {
  Scheduler sched(model, *tok, {.max_batch = 2});
  auto r = request(prompt_of(6, 300, model.config().vocab_size - 1), 40);
  const auto full = generate(model, r.prompt, r.gen);
  const std::string text = tok->decode(full.tokens, {.skip_special = true});
  ASSERT_GE(text.size(), 6u);
  // A stop string taken from the middle of the greedy text.
  const std::string stop = text.substr(3, 2);
  r.stop = {stop};
  const Collected c = collect(*sched.submit(std::move(r)));
  EXPECT_EQ(c.finish_reason, "stop");
  EXPECT_EQ(c.text, text.substr(0, text.find(stop)));
  EXPECT_LT(c.tokens.size(), full.tokens.size());
}

TEST_F(SchedulerTest, CancelledSequenceLeavesAndOthersContinue) {
  Scheduler sched(model, *tok, {.max_batch = 2});
  const int64_t V = model.config().vocab_size;
  auto r_long = request(prompt_of(5, 400, V - 1), 100000);
  r_long.gen.stop_ids.clear();
  auto r_other = request(prompt_of(7, 401, V - 1), 30);
  const auto want = generate(model, r_other.prompt, r_other.gen);
  auto a = sched.submit(std::move(r_long));
  auto b = sched.submit(std::move(r_other));
  SequenceEvent e;
  ASSERT_TRUE(a->next(e, 30s));  // it runs
  a->cancel();
  const Collected ca = collect(*a);
  EXPECT_EQ(ca.finish_reason, "cancelled");
  EXPECT_EQ(collect(*b).tokens, want.tokens);
  sched.wait_idle();
}

// One speculator of each draft kind over `m`: heads over a static tree, the model drafting for itself (every
// candidate accepted), and a feature draft growing small trees.
struct DraftKinds {
  explicit DraftKinds(const LlamaModel& m)
      : heads(DraftHeads::init_from(m, DraftHeadsConfig{}, false)),
        eagle(FeatureDraft::init_from(m, {}, false)),
        by_heads(m, heads, default_tree(heads.count(), 8)),
        by_self(m, m, 3),
        by_eagle(m, eagle, DecodeCost{.nodes = {1, 8}, .verify_ms = {1.0, 1.5}},
                 {.max_nodes = 8, .depth = 3, .expand = 2, .top_k = 3}) {}
  std::vector<const Speculator*> all() const { return {&by_heads, &by_self, &by_eagle}; }
  DraftHeads heads;
  FeatureDraft eagle;
  Speculator by_heads, by_self, by_eagle;
};

TEST_F(SchedulerTest, SpeculativeSequencesStreamTheirOwnOutputInTheContinuousBatch) {
  // Heads over a static tree, the model drafting for itself (every candidate accepted: several tokens per step), and
  // a feature draft (its trees grown per sequence, its states fed each step's accepted hidden states). Requests of
  // different lengths, one sampled and one with logprobs (decoded AR in the same engine step), join a batch of 3:
  // each gets exactly the tokens generate (--speculative) gives it alone, streamed as steps accept them.
  const DraftKinds drafts(model);
  const int64_t V = model.config().vocab_size;
  for (const Speculator* spec : drafts.all()) {
    // Drafting in every step whatever the load: the sampled request's tokens then equal generate()'s exactly.
    Scheduler sched(model, *tok, {.max_batch = 3, .speculator = spec, .speculative_max_batch = 3});
    std::vector<SequenceRequest> requests;
    std::vector<std::vector<int32_t>> want;
    for (int i = 0; i < 6; ++i) {
      requests.push_back(request(prompt_of(3 + 2 * i, 300 + i, V - 1), 6 + 7 * (i % 3)));
      if (i == 2) {  // top-k keeps the tiny model to ids its tokenizer has (its 264 logits cover 260 tokens)
        requests.back().gen.sampling.temperature = 0.8, requests.back().gen.sampling.seed = 77;
        requests.back().gen.sampling.top_k = 40;
      }
      if (i == 4) requests.back().logprobs = 1;
      const SequenceRequest& r = requests.back();
      want.push_back(r.logprobs >= 0 ? generate(model, r.prompt, r.gen).tokens : spec->generate(r.prompt, r.gen).tokens);
    }
    std::vector<std::shared_ptr<Sequence>> seqs;
    for (auto& r : requests) seqs.push_back(sched.submit(std::move(r)));
    for (int i = 0; i < 6; ++i) {
      int64_t events = 0;
      Collected c;
      SequenceEvent e;
      while (!c.finish_reason.size() && seqs[i]->next(e, 30s)) {
        ++events;
        c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
        if (e.finished) c.finish_reason = e.finish_reason;
      }
      EXPECT_EQ(c.tokens, want[i]) << spec->mode() << " request " << i << " ended " << c.finish_reason;
      if (want[i].size() >= 12) {
        EXPECT_GT(events, 2) << spec->mode() << " request " << i << ": not streamed";
      }
    }
    EXPECT_GT(sched.peak_batch(), 1);
    // A speculative sequence that is cancelled leaves between steps.
    auto endless = request(prompt_of(5, 400, V - 1), 100000);
    endless.gen.stop_ids.clear();
    auto a = sched.submit(std::move(endless));
    SequenceEvent e;
    ASSERT_TRUE(a->next(e, 30s));
    a->cancel();
    EXPECT_EQ(collect(*a).finish_reason, "cancelled");
    sched.wait_idle();
    EXPECT_EQ(sched.running(), 0);
  }
}

// Under load the engine stops drafting (speculative_max_batch; auto: when drafting does not pay) and resumes when the
// batch shrinks: greedy requests still get exactly generate()'s tokens, and the metrics count both kinds of step.
TEST_F(SchedulerTest, SpeculativeSequencesStopDraftingAboveTheBatchLimitAndKeepTheirOutput) {
  const DraftKinds drafts(model);
  const int64_t V = model.config().vocab_size;
  for (const Speculator* spec : drafts.all()) {
    serve::Metrics metrics;
    Scheduler sched(model, *tok, {.max_batch = 3, .speculator = spec, .speculative_max_batch = 1}, &metrics);
    std::vector<SequenceRequest> requests;
    std::vector<std::vector<int32_t>> want;
    for (int i = 0; i < 5; ++i) {
      requests.push_back(request(prompt_of(3 + 2 * i, 500 + i, V - 1), 5 + 9 * (i % 2)));
      want.push_back(spec->generate(requests.back().prompt, requests.back().gen).tokens);
    }
    // Submitted back to back (the references are computed first), so the requests really share engine steps.
    std::vector<std::shared_ptr<Sequence>> seqs;
    for (auto& r : requests) seqs.push_back(sched.submit(std::move(r)));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(collect(*seqs[i]).tokens, want[i]) << spec->mode() << " request " << i;
    sched.wait_idle();
    const std::string text = metrics.prometheus();
    auto count = [&](const std::string& drafted) {
      const std::string key = "linspec_speculative_engine_steps_total{drafted=\"" + drafted + "\"} ";
      const size_t at = text.find(key);
      return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size()));
    };
    EXPECT_GT(count("no"), 0) << spec->mode() << ": steps of 2-3 speculative sequences should not draft";
    EXPECT_GT(count("yes"), 0) << spec->mode() << ": the last sequence alone should draft again";
  }
}

TEST_F(SchedulerTest, RefusesWhenTheQueueIsFullAndBadPrompts) {
  Scheduler sched(model, *tok, {.max_batch = 1, .max_queue = 0});
  try {
    sched.submit(request({1, 2}, 4));
    FAIL() << "expected 503";
  } catch (const serve::ApiError& e) {
    EXPECT_EQ(e.status, 503);
  }
  Scheduler ok(model, *tok, {.max_batch = 1});
  EXPECT_THROW(ok.submit(request({}, 4)), serve::ApiError);
  EXPECT_THROW(ok.submit(request({1, static_cast<int32_t>(model.config().vocab_size)}, 4)), serve::ApiError);
}

TEST_F(SchedulerTest, EchoLogprobsScoreThePrompt) {
  Scheduler sched(model, *tok, {.max_batch = 2});
  auto r = request(prompt_of(9, 500, model.config().vocab_size - 1), 0);
  r.logprobs = 2;
  r.prompt_logprobs = true;
  const auto prompt = r.prompt;
  auto s = sched.submit(std::move(r));
  EXPECT_EQ(collect(*s).finish_reason, "length");
  ASSERT_EQ(s->prompt_logprobs.size(), prompt.size());
  EXPECT_FALSE(s->prompt_logprobs[0].logprob.has_value());
  // Against log-softmax of the parallel forward.
  NoGradGuard no_grad;
  const auto logits =
      model.forward(Tensor::from_vector(prompt, {1, static_cast<int64_t>(prompt.size())})).to_vector<double>();
  const int64_t V = model.config().vocab_size;
  for (size_t i = 1; i < prompt.size(); ++i) {
    const double* row = logits.data() + (i - 1) * V;
    double mx = *std::max_element(row, row + V), z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
    EXPECT_NEAR(*s->prompt_logprobs[i].logprob, row[prompt[i]] - mx - std::log(z), 1e-4) << i;
    ASSERT_EQ(s->prompt_logprobs[i].top.size(), 2u);
    EXPECT_GE(s->prompt_logprobs[i].top[0].second, s->prompt_logprobs[i].top[1].second);
  }
}

}  // namespace
}  // namespace linspec
