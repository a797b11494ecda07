// Gradient checking by central differences in double precision, for table-driven op tests.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"

namespace linspec::testing {

// An op under test: builds a scalar-or-tensor output from f64 inputs. The harness reduces a tensor
// output to a scalar with fixed random weights so every output element contributes.
struct GradCase {
  std::string name;
  std::vector<Shape> input_shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<bool> differentiable;  // empty: all inputs; false entries are held constant
  // Optional custom input generator (e.g. positive values, index tensors); default N(0, 1).
  std::function<Tensor(size_t index, const Shape& shape, Philox& rng)> make_input;
};

struct GradCheckResult {
  double max_abs_err = 0, max_rel_err = 0;
  std::string worst;  // "input i, element j: analytic a vs numeric n"
};

// Compares autograd gradients with (f(x+h) - f(x-h)) / 2h for every element of every differentiable input.
GradCheckResult gradcheck(const GradCase& c, double h = 1e-6, uint64_t seed = 1234);

// Random tensors.
Tensor random_normal(const Shape& shape, DType dtype, Philox& rng, double stddev = 1.0);
Tensor random_ints(const Shape& shape, int32_t lo, int32_t hi, Philox& rng);  // [lo, hi)

}  // namespace linspec::testing
