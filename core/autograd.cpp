#include "core/autograd.h"

#include "core/backend.h"

namespace linspec {
namespace {
thread_local Tape default_tape;
thread_local Tape* tape_ptr = nullptr;
thread_local bool grad_mode = true;

void add_into(Tensor& acc, const Tensor& g) {
  LINSPEC_CHECK(acc.shape() == g.shape(), "gradient shape ", shape_str(g.shape()), " vs ", shape_str(acc.shape()));
  Tensor gc = g.dtype() == acc.dtype() ? g.contiguous() : g.to(acc.dtype()).contiguous();
  const int64_t n = acc.numel();
  const auto& be = ops::detail::backend_of("gradient accumulation", {&acc, &gc});
  if (acc.dtype() == DType::F64) be.f64.elementwise.add_inplace(acc.device_data<double>(), gc.device_data<double>(), n);
  else be.f32.elementwise.add_inplace(acc.device_data<float>(), gc.device_data<float>(), n);
}
}  // namespace

void Tape::run_backward() {
  // Pop as we go so saved tensors are released as early as possible.
  while (!entries_.empty()) {
    auto fn = std::move(entries_.back());
    entries_.pop_back();
    fn();
  }
}

Tape& current_tape() { return tape_ptr ? *tape_ptr : default_tape; }

TapeScope::TapeScope(Tape& tape) : previous_(tape_ptr) { tape_ptr = &tape; }
TapeScope::~TapeScope() { tape_ptr = previous_; }

bool grad_enabled() { return grad_mode; }
NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void accumulate_grad(const Tensor& t, const Tensor& g) {
  if (!t.requires_grad() || !g.defined()) return;
  AutogradMeta& m = *t.autograd_meta();
  if (!m.grad.defined()) {
    // A whole, contiguous buffer no other handle can see (a backward closure's fresh local) is taken as it is,
    // saving an allocation and a full copy per gradient.
    if (g.storage().use_count() == 1 && g.is_contiguous() && g.dtype() == t.dtype() && g.device() == t.device() &&
        g.nbytes() == g.storage()->bytes() && g.raw_data() == g.storage()->data() && g.numel() == t.numel()) {
      m.grad = g.view(t.shape());
      return;
    }
    // Otherwise own a contiguous copy in the tensor's dtype: g may alias a buffer the caller still uses.
    Tensor fresh = Tensor::empty(t.shape(), t.dtype(), t.device());
    fresh.copy_from(g.reshape(t.shape()));
    m.grad = fresh;
  } else if (m.grad_stale) {
    m.grad.copy_from(g.reshape(t.shape()));
    m.grad_stale = false;
  } else {
    add_into(m.grad, g.reshape(t.shape()));
  }
}

void record_op(Tensor& out, std::function<void(Tensor)> fn) {
  auto meta = std::make_shared<AutogradMeta>();
  meta->is_leaf = false;
  out.set_autograd_meta(meta);
  // The entry owns the output's meta (not the output's data): the consumer that accumulated into it
  // may already have been popped and destroyed, taking the last handle to the output with it.
  current_tape().record([m = std::move(meta), fn = std::move(fn)]() {
    if (!m->grad.defined()) return;  // output unused by the loss
    Tensor g = m->grad;
    if (!m->retain) m->grad = Tensor();
    // Handed over by value: a closure that takes it by value owns the buffer and can pass it on without a copy.
    fn(std::move(g));
  });
}

void backward(const Tensor& output, const Tensor& grad_output) {
  LINSPEC_CHECK(output.requires_grad(), "backward() on a tensor that does not require grad");
  accumulate_grad(output, grad_output);
  current_tape().run_backward();
}

void backward(const Tensor& loss) {
  LINSPEC_CHECK(loss.numel() == 1, "backward() needs a scalar loss, got shape ", shape_str(loss.shape()));
  backward(loss, Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device()));
}

std::vector<Tensor> checkpoint(const BlockFn& block, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = block(inputs);
  }
  bool needs = false;
  for (const auto& t : inputs) needs = needs || (grad_enabled() && t.requires_grad());
  // Parameters captured by the block also need the recomputation, so record whenever grad is on.
  needs = needs || grad_enabled();
  if (!needs) return outputs;

  std::vector<std::shared_ptr<AutogradMeta>> metas;
  for (auto& o : outputs) {
    auto m = std::make_shared<AutogradMeta>();
    m->is_leaf = false;
    o.set_autograd_meta(m);
    metas.push_back(m);
  }
  current_tape().record([block, inputs, metas]() {
    std::vector<Tensor> grads;
    bool any = false;
    for (auto& m : metas) {
      grads.push_back(m->grad);
      if (!m->retain) m->grad = Tensor();
      any = any || grads.back().defined();
    }
    if (!any) return;
    // Re-run the block on detached inputs that collect their own gradients.
    std::vector<Tensor> local_inputs;
    for (const auto& t : inputs) {
      Tensor d = t.detach();
      if (t.requires_grad()) d.set_requires_grad(true);
      local_inputs.push_back(d);
    }
    Tape local;
    std::vector<Tensor> recomputed;
    {
      TapeScope scope(local);
      recomputed = block(local_inputs);
      for (size_t i = 0; i < recomputed.size(); ++i)
        if (grads[i].defined() && recomputed[i].requires_grad()) accumulate_grad(recomputed[i], grads[i]);
      local.run_backward();
    }
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].requires_grad()) accumulate_grad(inputs[i], local_inputs[i].grad());
  });
  return outputs;
}

}  // namespace linspec
