#include "serve/decode_cost.h"

#include "model/batched_decode.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/autograd.h"
#include "core/device.h"
#include "core/error.h"
#include "model/op_profile.h"
#include "serve/report.h"

namespace linspec {
namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median wall time of fn; `device` is synchronised around each call (a GPU queues its kernels).
template <typename Fn>
double median_ms(int reps, Device device, Fn&& fn) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    device_synchronize(device);
    const double t0 = now_ms();
    fn();
    device_synchronize(device);
    t.push_back(now_ms() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Milliseconds per pass of each op kind over `reps` profiled passes of `pass`.
template <typename F>
std::map<std::string, double> profile_ms(int reps, F&& pass) {
  OpProfile prof;
  {
    OpProfile::Scope scope(&prof);
    for (int i = 0; i < reps; ++i) pass();
  }
  return prof.forward_ms_per(reps);
}
}  // namespace

double DecodeCost::verify_ms_at(int64_t n) const {
  LINSPEC_CHECK(!nodes.empty() && nodes.size() == verify_ms.size(), "decode cost without measurements");
  if (nodes.size() == 1) return verify_ms[0] * static_cast<double>(n) / static_cast<double>(nodes[0]);
  size_t i = 1;
  while (i + 1 < nodes.size() && nodes[i] < n) ++i;  // segment [i-1, i] holds n, or the last one extrapolates
  const double x0 = nodes[i - 1], x1 = nodes[i], y0 = verify_ms[i - 1], y1 = verify_ms[i];
  return std::max(y0 + (y1 - y0) * (static_cast<double>(n) - x0) / (x1 - x0), 0.0);
}

nlohmann::json DecodeCost::to_json() const {
  return {{"key", key}, {"ar_step_ms", ar_step_ms}, {"draft_ms", draft_ms}, {"nodes", nodes}, {"verify_ms", verify_ms}};
}

DecodeCost DecodeCost::from_json(const nlohmann::json& j, const std::string& where) {
  DecodeCost c;
  try {
    c.key = j.at("key").get<std::string>();
    c.ar_step_ms = j.at("ar_step_ms").get<double>();
    c.draft_ms = j.at("draft_ms").get<double>();
    c.nodes = j.at("nodes").get<std::vector<int64_t>>();
    c.verify_ms = j.at("verify_ms").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw_input_error(where, ": not a decode cost file (", e.what(), ")");
  }
  if (c.nodes.empty() || c.nodes.size() != c.verify_ms.size())
    throw_input_error(where, ": 'nodes' and 'verify_ms' must be non-empty lists of one length");
  for (size_t i = 0; i < c.nodes.size(); ++i)
    if (c.nodes[i] < 1 || (i > 0 && c.nodes[i] <= c.nodes[i - 1]) || !(c.verify_ms[i] >= 0))
      throw_input_error(where, ": 'nodes' must increase from 1 and times be >= 0 (entry ", i, ")");
  return c;
}

// Part of the cache key: bump it when a decode kernel's speed changes, so that cached costs measured with the old
// kernels do not size trees for the new ones (2: Q8 weights in panels of 16 rows; 3: vectorised small ops, threaded
// aug step, bf16 prefetch; 4: vectorised aug weighted-row sums; 5: f32 weight-row kernel, 4 × 4 tiles; 6: weight-row
// tiles of up to 8 rows). With heads, the key also names the format their draft_ms was measured in.
constexpr int kDecodeKernelsRevision = 6;

std::string decode_cost_key(const LlamaModel& m, const DraftHeads* heads) {
  const ModelConfig& c = m.config();
  const nlohmann::json hw = hardware_description();
  nlohmann::json k{{"kernels", kDecodeKernelsRevision},
                   {"cpu", hw["cpu"]},
                   {"threads", hw["threads"]},
                   {"device", device_name(m.options().device)},
                   {"gpu", hw["gpu"]},
                   {"layers", c.num_layers},
                   {"hidden", c.hidden_size},
                   {"intermediate", c.intermediate_size},
                   {"vocab", c.vocab_size},
                   {"attention", c.attention},
                   {"weights", dtype_name(m.inference_weights())}};
  if (heads) k["draft_weights"] = dtype_name(heads->inference_weights());  // what draft_ms was measured with
  return k.dump();
}

std::string decode_cost_cache_path(const std::string& key) {
  const char* env = std::getenv("LINSPEC_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir =
      env && *env ? std::filesystem::path(env) : std::filesystem::path(home ? home : ".") / ".cache" / "linspec";
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.json", static_cast<unsigned long long>(XXH64(key.data(), key.size(), 0)));
  return (dir / "decode_cost" / name).string();
}

DecodeCost measure_decode_cost(const LlamaModel& m, const DraftHeads* heads, const std::vector<int64_t>& nodes,
                               int reps, DecodeProfile* profile) {
  NoGradGuard no_grad;
  const Device dev = m.options().device;
  DecodeCost cost;
  cost.key = decode_cost_key(m, heads);
  const int64_t V = m.config().vocab_size, prompt_len = 64;
  std::vector<int32_t> prompt(prompt_len);
  for (int64_t i = 0; i < prompt_len; ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 11) % V);
  const int64_t max_nodes = nodes.empty() ? 1 : *std::max_element(nodes.begin(), nodes.end());
  DecodeState state = m.new_decode_state(1, prompt_len + reps + 2 + max_nodes + 8);
  const Tensor hidden = m.decode_hidden(state, Tensor::from_vector(prompt, {1, prompt_len}), true);
  const Tensor one = Tensor::from_vector(std::vector<int32_t>{1}, {1, 1});
  m.decode(state, one, true);  // warm-up: primitives, scratch buffers
  cost.ar_step_ms = median_ms(reps, dev, [&] { m.decode(state, one, true); });
  if (profile) profile->ar_step_ms = profile_ms(reps, [&] { m.decode(state, one, true); });
  if (heads) {
    const Tensor h = hidden.view({1, m.config().hidden_size});
    heads->all_logits(h);
    cost.draft_ms = median_ms(reps, dev, [&] { heads->all_logits(h); });
  }
  for (int64_t n : nodes) {
    std::vector<int32_t> ids(n), parent(n);
    for (int64_t i = 0; i < n; ++i) {
      ids[i] = static_cast<int32_t>((i * 31 + 5) % V);
      parent[i] = i == 0 ? -1 : static_cast<int32_t>((i - 1) / 2);  // a binary tree: the shapes dynamic trees take
    }
    const Tensor t = Tensor::from_vector(ids, {n});
    m.verify_tree(state, t, parent);  // warm-up at this size
    cost.nodes.push_back(n);
    cost.verify_ms.push_back(median_ms(reps, dev, [&] { m.verify_tree(state, t, parent); }));
    if (profile) profile->verify_ms.push_back(profile_ms(reps, [&] { m.verify_tree(state, t, parent); }));
  }
  state.pending_tree = {};
  return cost;
}

BatchedDecodeCost measure_batched_decode(const LlamaModel& m, const std::vector<int64_t>& batch, int reps,
                                         bool profile) {
  NoGradGuard no_grad;
  const int64_t V = m.config().vocab_size, prompt_len = 64;
  BatchedDecodeCost out;
  for (int64_t B : batch) {
    LINSPEC_CHECK(B >= 1, "measure_batched_decode: batch sizes must be >= 1, got ", B);
    // B sequences at different positions (prompts of 64 .. 64 + B − 1 tokens), as a server's batch is.
    std::vector<DecodeState> states;
    std::vector<DecodeState*> ptrs;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int32_t> prompt(prompt_len + b);
      for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 11 + b) % V);
      states.push_back(m.new_decode_state(1, prompt_len + b + 2 * reps + 4));
      m.decode(states.back(), Tensor::from_vector(prompt, {1, static_cast<int64_t>(prompt.size())}), true);
    }
    for (auto& s : states) ptrs.push_back(&s);
    const std::vector<int32_t> ids(B, 1);
    decode_batched(m, ptrs, ids);  // warm-up at this size
    out.batch.push_back(B);
    out.step_ms.push_back(median_ms(reps, m.options().device, [&] { decode_batched(m, ptrs, ids); }));
    if (profile) out.profile_ms.push_back(profile_ms(reps, [&] { decode_batched(m, ptrs, ids); }));
  }
  return out;
}

DecodeCost cached_decode_cost(const LlamaModel& m, const DraftHeads* heads, bool* measured) {
  const std::string key = decode_cost_key(m, heads), path = decode_cost_cache_path(key);
  std::ifstream in(path);
  if (in) {
    try {
      DecodeCost c = DecodeCost::from_json(nlohmann::json::parse(in), path);
      if (c.key == key && (c.draft_ms > 0) == (heads != nullptr)) {
        if (measured) *measured = false;
        return c;
      }
    } catch (const std::exception&) {
      // A stale or damaged cache is measured again and replaced.
    }
  }
  DecodeCost c = measure_decode_cost(m, heads);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (!ec) write_json_atomically(path, c.to_json());
  if (measured) *measured = true;
  return c;
}

}  // namespace linspec
