// Named parameter tensors of a model, kept in insertion order (the order optimizers and checkpoints see).
// Names follow the HF checkpoint convention ("model.layers.0.self_attn.q_proj.weight") so a loaded model
// can be exported back without a rename table.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace linspec {

class ParameterStore {
 public:
  // Registers `t` under `name` and returns a handle to the same tensor (storage and autograd meta are shared,
  // so set requires_grad before adding).
  Tensor add(const std::string& name, Tensor t) {
    LINSPEC_CHECK(!index_.count(name), "parameter registered twice: ", name);
    index_[name] = entries_.size();
    entries_.emplace_back(name, std::move(t));
    return entries_.back().second;
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const Tensor& get(const std::string& name) const {
    auto it = index_.find(name);
    LINSPEC_CHECK(it != index_.end(), "no parameter named ", name);
    return entries_[it->second].second;
  }
  const std::vector<std::pair<std::string, Tensor>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  int64_t numel() const {
    int64_t n = 0;
    for (const auto& e : entries_) n += e.second.numel();
    return n;
  }

 private:
  std::vector<std::pair<std::string, Tensor>> entries_;
  std::map<std::string, size_t> index_;
};

}  // namespace linspec
