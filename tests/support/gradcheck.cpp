#include "tests/support/gradcheck.h"

#include <cmath>
#include <sstream>

namespace linspec::testing {

Tensor random_normal(const Shape& shape, DType dtype, Philox& rng, double stddev) {
  Tensor t = Tensor::empty(shape, DType::F64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.normal() * stddev;
  return t.to(dtype);
}

Tensor random_ints(const Shape& shape, int32_t lo, int32_t hi, Philox& rng) {
  Tensor t = Tensor::empty(shape, DType::I32);
  int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + static_cast<int32_t>(rng.next_u32() % static_cast<uint32_t>(hi - lo));
  return t;
}

GradCheckResult gradcheck(const GradCase& c, double h, uint64_t seed) {
  Philox rng(seed);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.input_shapes.size(); ++i)
    inputs.push_back(c.make_input ? c.make_input(i, c.input_shapes[i], rng)
                                  : random_normal(c.input_shapes[i], DType::F64, rng));
  auto is_diff = [&](size_t i) {
    return inputs[i].dtype() == DType::F64 && (c.differentiable.empty() || c.differentiable[i]);
  };

  // Fixed projection weights so the scalar depends on every output element.
  Tensor weights;
  auto scalar_of = [&](const Tensor& out) -> Tensor {
    if (!weights.defined()) {
      Philox wr(seed ^ 0x9e3779b97f4a7c15ull);
      weights = random_normal(out.shape(), DType::F64, wr);
    }
    return ops::sum(ops::mul(out, weights));
  };

  // Analytic gradients.
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor leaf = inputs[i].clone();
    if (is_diff(i)) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  Tape tape;
  {
    TapeScope scope(tape);
    Tensor loss = scalar_of(c.fn(leaves));
    backward(loss);
  }

  GradCheckResult r;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!is_diff(i)) continue;
    Tensor analytic = leaves[i].grad();
    for (int64_t j = 0; j < inputs[i].numel(); ++j) {
      auto eval = [&](double delta) {
        NoGradGuard ng;
        std::vector<Tensor> xs;
        for (size_t q = 0; q < inputs.size(); ++q) xs.push_back(inputs[q].clone());
        xs[i].data<double>()[j] += delta;
        return scalar_of(c.fn(xs)).item();
      };
      const double numeric = (eval(h) - eval(-h)) / (2 * h);
      const double a = analytic.defined() ? analytic.data<double>()[j] : 0.0;
      const double abs_err = std::fabs(a - numeric);
      const double rel_err = abs_err / std::max(1.0, std::fabs(numeric));
      if (rel_err > r.max_rel_err) {
        std::ostringstream os;
        os << "input " << i << ", element " << j << ": analytic " << a << " vs numeric " << numeric;
        r.worst = os.str();
      }
      r.max_abs_err = std::max(r.max_abs_err, abs_err);
      r.max_rel_err = std::max(r.max_rel_err, rel_err);
    }
  }
  return r;
}

}  // namespace linspec::testing
