#include "trainer/adamw.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "core/autograd.h"
#include "kernels/adamw.h"

namespace linspec {

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWConfig& config) : config_(config) {
  LINSPEC_CHECK(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
                "AdamW: betas must lie in [0, 1), got ", config.beta1, ", ", config.beta2);
  LINSPEC_CHECK(config.eps > 0, "AdamW: eps must be positive");
  std::unordered_set<std::string> seen;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ParamGroup& g = groups[gi];
    LINSPEC_CHECK(g.names.empty() || g.names.size() == g.params.size(), "AdamW: group ", gi, " has ", g.names.size(),
                  " names for ", g.params.size(), " params");
    for (size_t i = 0; i < g.params.size(); ++i) {
      const Tensor& p = g.params[i];
      Slot s;
      s.name = g.names.empty() ? detail::concat("g", gi, ".", i) : g.names[i];
      LINSPEC_CHECK(p.defined() && p.dtype() == DType::F32 && p.device() == Device::CPU && p.is_contiguous(),
                    "AdamW: parameter ", s.name, " must be a contiguous f32 CPU tensor (fp32 master weights)");
      LINSPEC_CHECK(p.requires_grad(), "AdamW: parameter ", s.name, " does not require grad");
      LINSPEC_CHECK(seen.insert(s.name).second, "AdamW: duplicate parameter name ", s.name);
      s.param = p;
      s.weight_decay = g.weight_decay.value_or(config.weight_decay);
      s.lr_scale = g.lr_scale;
      slots_.push_back(std::move(s));
    }
  }
}

void AdamW::step(double lr) {
  ++step_count_;
  std::vector<kernels::cpu::AdamWTensor> work;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    LINSPEC_CHECK(g.dtype() == DType::F32 && g.is_contiguous() && g.numel() == s.param.numel(),
                  "AdamW: gradient of ", s.name, " is not a contiguous f32 tensor of the parameter's size");
    if (!s.m.defined()) {
      s.m = Tensor::zeros(s.param.shape());
      s.v = Tensor::zeros(s.param.shape());
    }
    ++s.updates;
    const double lr_eff = lr * s.lr_scale;
    const double t = static_cast<double>(s.updates);
    kernels::cpu::AdamWCoeffs c;
    c.beta1 = static_cast<float>(config_.beta1);
    c.beta2 = static_cast<float>(config_.beta2);
    c.eps = static_cast<float>(config_.eps);
    c.decay = static_cast<float>(1.0 - lr_eff * s.weight_decay);
    c.step_size = static_cast<float>(lr_eff / (1.0 - std::pow(config_.beta1, t)));
    c.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(config_.beta2, t)));
    work.push_back({s.param.data<float>(), g.data<float>(), s.m.data<float>(), s.v.data<float>(), s.param.numel(), c});
  }
  kernels::cpu::adamw_update(work);
}

void AdamW::zero_grad() {
  for (Slot& s : slots_) s.param.zero_grad();
}

std::vector<NamedTensor> AdamW::state() const {
  std::vector<NamedTensor> out;
  Tensor updates = Tensor::empty({num_params()}, DType::I64);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    updates.data<int64_t>()[i] = s.updates;
    if (!s.m.defined()) continue;
    out.push_back({"m/" + s.name, s.m.clone()});
    out.push_back({"v/" + s.name, s.v.clone()});
  }
  out.push_back({"updates", updates});
  return out;
}

void AdamW::load_state(int64_t step_count, const std::vector<NamedTensor>& state) {
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& nt : state) by_name[nt.name] = &nt.tensor;
  auto it = by_name.find("updates");
  if (it == by_name.end()) throw_input_error("optimizer state: tensor 'updates' is missing");
  const Tensor& updates = *it->second;
  if (updates.dtype() != DType::I64 || updates.shape() != Shape{num_params()})
    throw_input_error("optimizer state: tensor 'updates' has shape ", shape_str(updates.shape()), " dtype ",
                      dtype_name(updates.dtype()), ", expected i64 [", num_params(), "]");
  by_name.erase(it);
  const std::vector<int64_t> counts = updates.to_vector<int64_t>();

  // Validate everything before touching any slot, so a bad snapshot leaves the optimizer as it was.
  std::vector<std::pair<const Tensor*, const Tensor*>> moments(slots_.size(), {nullptr, nullptr});
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (counts[i] < 0) throw_input_error("optimizer state: negative update count for ", s.name);
    if (counts[i] == 0) continue;
    for (int which = 0; which < 2; ++which) {
      const std::string name = (which == 0 ? "m/" : "v/") + s.name;
      auto f = by_name.find(name);
      if (f == by_name.end()) throw_input_error("optimizer state: tensor '", name, "' is missing");
      const Tensor& t = *f->second;
      if (t.shape() != s.param.shape() || !is_floating(t.dtype()))
        throw_input_error("optimizer state: tensor '", name, "' has shape ", shape_str(t.shape()), ", expected ",
                          shape_str(s.param.shape()));
      (which == 0 ? moments[i].first : moments[i].second) = &t;
      by_name.erase(f);
    }
  }
  if (!by_name.empty()) throw_input_error("optimizer state: unexpected tensor '", by_name.begin()->first, "'");

  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.updates = counts[i];
    if (counts[i] == 0) {
      s.m = Tensor();
      s.v = Tensor();
      continue;
    }
    s.m = moments[i].first->to(Device::CPU).to(DType::F32).contiguous().clone();
    s.v = moments[i].second->to(Device::CPU).to(DType::F32).contiguous().clone();
  }
  step_count_ = step_count;
}

}  // namespace linspec
