#include "trainer/train_optimizer.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "trainer/snapshot.h"
#include "trainer/trainable.h"

namespace linspec::trainer {
namespace {

std::string piece_name(const std::string& param, int64_t begin) { return param + "@" + std::to_string(begin); }

}  // namespace

TrainOptimizer::TrainOptimizer(GradSync& sync, const AdamWConfig& config) : sync_(sync) {
  std::vector<std::pair<std::string, Tensor>> trainable;
  for (const auto& s : sync.slots()) trainable.emplace_back(s.name, s.param);
  std::vector<ParamGroup> groups = make_param_groups(trainable, config.weight_decay);
  for (const auto& g : groups)
    for (size_t i = 0; i < g.params.size(); ++i) names_.push_back(g.names[i]), params_.push_back(g.params[i]);
  if (!sync.zero()) {
    adamw_ = std::make_unique<AdamW>(std::move(groups), config);
    return;
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names_.size(); ++i) index[names_[i]] = i;
  // One piece per (parameter, this rank's shard of its bucket); AdamW slot order = decayed pieces first.
  ParamGroup piece_groups[2];
  std::vector<Piece> by_group[2];
  piece_groups[0].weight_decay = config.weight_decay;
  piece_groups[1].weight_decay = 0.0;
  for (const auto& b : sync.buckets()) {
    const auto [lo, hi] = sync.shard_range(b);
    for (size_t si : b.slots) {
      const auto& s = sync.slots()[si];
      const int64_t begin = std::max<int64_t>(lo - s.offset, 0), end = std::min<int64_t>(hi - s.offset, s.param.numel());
      if (begin >= end) continue;
      Tensor piece = s.param.view({-1}).slice(0, begin, end).detach();
      piece.set_requires_grad(true);
      piece.autograd_meta()->grad = b.shard.slice(0, s.offset + begin - lo, s.offset + end - lo);
      const int g = takes_weight_decay(s.name, s.param) ? 0 : 1;
      piece_groups[g].params.push_back(piece);
      piece_groups[g].names.push_back(piece_name(s.name, begin));
      by_group[g].push_back({index.at(s.name), begin, end});
    }
  }
  for (int g = 0; g < 2; ++g) pieces_.insert(pieces_.end(), by_group[g].begin(), by_group[g].end());
  adamw_ = std::make_unique<AdamW>(std::vector<ParamGroup>{piece_groups[0], piece_groups[1]}, config);
}

void TrainOptimizer::step(double lr, double grad_scale) {
  adamw_->step(lr, grad_scale);
  if (sync_.zero()) sync_.allgather_params();
}

std::map<std::string, Tensor> TrainOptimizer::full_state() {
  std::map<std::string, Tensor> own = to_tensor_map(adamw_->state());
  if (!sync_.zero()) return own;

  // Update counts: reported by the rank holding each parameter's first element.
  const std::vector<int64_t> piece_updates = own.at("updates").to_vector<int64_t>();
  std::vector<double> updates(names_.size(), 0.0);
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (pieces_[i].begin == 0) updates[pieces_[i].param] = static_cast<double>(piece_updates[i]);
  sync_.comm().allreduce_sum(updates.data(), updates.size());
  std::vector<int64_t> counts(updates.begin(), updates.end());
  std::map<std::string, Tensor> full;
  full["updates"] = Tensor::from_vector(counts, {static_cast<int64_t>(counts.size())});

  // Moments: each bucket's shards gathered, then cut into parameters.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names_.size(); ++i) index[names_[i]] = i;
  for (const char* prefix : {"m/", "v/"}) {
    for (const auto& b : sync_.buckets()) {
      const auto [lo, hi] = sync_.shard_range(b);
      std::vector<float> mine(hi - lo, 0.0f), all(b.padded);
      for (size_t si : b.slots) {
        const auto& s = sync_.slots()[si];
        const int64_t begin = std::max<int64_t>(lo - s.offset, 0);
        auto it = own.find(prefix + piece_name(s.name, begin));
        if (begin >= s.param.numel() || it == own.end()) continue;
        const float* src = it->second.data<float>();
        std::copy(src, src + it->second.numel(), mine.data() + (s.offset + begin - lo));
      }
      sync_.comm().allgather(mine.data(), all.data(), static_cast<size_t>(b.padded));
      for (size_t si : b.slots) {
        const auto& s = sync_.slots()[si];
        if (counts[index.at(s.name)] == 0) continue;
        std::vector<float> values(all.begin() + s.offset, all.begin() + s.offset + s.param.numel());
        full[prefix + s.name] = Tensor::from_vector(values, s.param.shape());
      }
    }
  }
  return full;
}

void TrainOptimizer::load_full_state(int64_t step_count, const std::map<std::string, Tensor>& state) {
  if (!sync_.zero()) {
    adamw_->load_state(step_count, to_named_tensors(state));
    return;
  }
  auto it = state.find("updates");
  if (it == state.end()) throw_input_error("optimizer state: tensor 'updates' is missing");
  const int64_t n = static_cast<int64_t>(names_.size());
  if (it->second.dtype() != DType::I64 || it->second.shape() != Shape{n})
    throw_input_error("optimizer state: tensor 'updates' has shape ", shape_str(it->second.shape()), ", expected i64 [",
                      n, "]");
  const std::vector<int64_t> counts = it->second.to_vector<int64_t>();
  for (const auto& [name, t] : state) {
    if (name == "updates") continue;
    const std::string param = name.size() > 2 ? name.substr(2) : "";
    const bool known = (name.rfind("m/", 0) == 0 || name.rfind("v/", 0) == 0) &&
                       std::find(names_.begin(), names_.end(), param) != names_.end();
    if (!known) throw_input_error("optimizer state: unexpected tensor '", name, "'");
  }
  std::vector<NamedTensor> pieces;
  std::vector<int64_t> piece_counts;
  for (const Piece& p : pieces_) {
    const std::string& name = names_[p.param];
    piece_counts.push_back(counts[p.param]);
    if (counts[p.param] == 0) continue;
    for (const char* prefix : {"m/", "v/"}) {
      auto m = state.find(prefix + name);
      if (m == state.end()) throw_input_error("optimizer state: tensor '", prefix, name, "' is missing");
      if (m->second.numel() != params_[p.param].numel())
        throw_input_error("optimizer state: tensor '", prefix, name, "' has shape ", shape_str(m->second.shape()),
                          ", expected ", shape_str(params_[p.param].shape()));
      const Tensor flat = m->second.to(DType::F32).contiguous().view({-1});
      pieces.push_back({prefix + piece_name(name, p.begin), flat.slice(0, p.begin, p.end).clone()});
    }
  }
  pieces.push_back({"updates", Tensor::from_vector(piece_counts, {static_cast<int64_t>(piece_counts.size())})});
  adamw_->load_state(step_count, pieces);
}

}  // namespace linspec::trainer
