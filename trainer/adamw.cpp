#include "trainer/adamw.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "core/autograd.h"
#include "core/backend.h"

namespace linspec {
namespace {
Tensor host_copy(const Tensor& t) { return t.device() == Device::CPU ? t.clone() : t.to(Device::CPU); }
// A contiguous f32 copy on `device` that shares no storage with `t`.
Tensor owned_on(const Tensor& t, Device device) {
  Tensor out = Tensor::empty(t.shape(), DType::F32, device);
  out.copy_from(t);
  return out;
}
}  // namespace

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
      LINSPEC_CHECK(p.defined() && p.dtype() == DType::F32 && p.is_contiguous(), "AdamW: parameter ", s.name,
                    " must be a contiguous f32 tensor (fp32 master weights)");
      LINSPEC_CHECK(slots_.empty() || p.device() == slots_.front().param.device(), "AdamW: parameter ", s.name,
                    " is on ", device_name(p.device()), ", the others on ", device_name(slots_.front().param.device()));
      LINSPEC_CHECK(p.requires_grad(), "AdamW: parameter ", s.name, " does not require grad");
      LINSPEC_CHECK(seen.insert(s.name).second, "AdamW: duplicate parameter name ", s.name);
      s.param = p;
      s.weight_decay = g.weight_decay.value_or(config.weight_decay);
      s.lr_scale = g.lr_scale;
      slots_.push_back(std::move(s));
    }
  }
}

void AdamW::step(double lr, double grad_scale) {
  ++step_count_;
  std::vector<kernels::AdamWTensor> work;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    LINSPEC_CHECK(g.dtype() == DType::F32 && g.is_contiguous() && g.numel() == s.param.numel(),
                  "AdamW: gradient of ", s.name, " is not a contiguous f32 tensor of the parameter's size");
    if (!s.m.defined()) {
      // The moments live with the parameter (on its device).
      s.m = Tensor::zeros(s.param.shape(), DType::F32, s.param.device());
      s.v = Tensor::zeros(s.param.shape(), DType::F32, s.param.device());
    }
    ++s.updates;
    const double lr_eff = lr * s.lr_scale;
    const double t = static_cast<double>(s.updates);
    kernels::AdamWCoeffs c;
    c.beta1 = static_cast<float>(config_.beta1);
    c.beta2 = static_cast<float>(config_.beta2);
    c.eps = static_cast<float>(config_.eps);
    c.decay = static_cast<float>(1.0 - lr_eff * s.weight_decay);
    c.step_size = static_cast<float>(lr_eff / (1.0 - std::pow(config_.beta1, t)));
    c.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(config_.beta2, t)));
    c.grad_scale = static_cast<float>(grad_scale);
    work.push_back({s.param.device_data<float>(), g.device_data<float>(), s.m.device_data<float>(),
                    s.v.device_data<float>(), s.param.numel(), c});
  }
  if (work.empty()) return;
  const auto& be = backend(slots_.front().param.device());
  ops::detail::kernel(be.adamw.update, "adamw_update", be)(work);
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
    // Host copies for the snapshot writer, whatever device the moments live on.
    out.push_back({"m/" + s.name, host_copy(s.m)});
    out.push_back({"v/" + s.name, host_copy(s.v)});
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
    s.m = owned_on(*moments[i].first, s.param.device());
    s.v = owned_on(*moments[i].second, s.param.device());
  }
  step_count_ = step_count;
}

}  // namespace linspec
