// Backend conformance: every op, forward and backward, on every backend (CPU, the host-memory TestHost device, and
// CUDA when this build has it and a GPU is visible) in f32 and f64, against the CPU f64 run of the same op. The
// TestHost rows prove the device-generic wiring on a machine without a GPU: inputs, outputs and gradients live on a
// device that is not the CPU, so an op that allocated on the CPU, read operands on the host or skipped the backend
// table would fail here. CUDA rows on a machine without one are reported as not run, by name.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/backend.h"
#include "attention/baselines/baseline_attention.h"
#include "attention/aug/aug_attention.h"
#include "core/ops.h"
#include "core/rng.h"
#include "kernels/cpu/backend.h"
#include "kernels/cuda/backend.h"
#include "tests/support/gradcheck.h"
#include "tests/support/test_host_device.h"

using namespace linspec;
using linspec::testing::random_ints;
using linspec::testing::random_normal;

namespace {

// One op: input shapes (f64 normal inputs unless make_input says otherwise) and the op applied to them.
struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::function<Tensor(size_t, const Shape&, Philox&)> make_input;  // null: N(0, 1)
  double f32_tol = 2e-5;                                             // scaled error allowed in f32
};

AugConfig small_aug() {
  AugConfig c;
  c.group_size = 4;
  c.conv_taps = 3;
  return c;
}

BaselineAttentionConfig kernel_cfg(BaselinePreset p) {
  BaselineAttentionConfig c;
  c.preset = p;
  c.chunk = 4;
  c.group = 4;
  c.window = 3;
  c.max_len = 64;
  return c;
}

// Integer ids in [0, vocab) for input `id_input`, normal floats for the others.
Tensor ids_for(size_t i, const Shape& s, Philox& rng, size_t id_input, int32_t vocab) {
  return i == id_input ? random_ints(s, 0, vocab, rng) : random_normal(s, DType::F64, rng);
}

Tensor baseline_attention_of(BaselinePreset p, const std::vector<Tensor>& x) {
  const BaselineAttentionConfig c = kernel_cfg(p);
  // Preset parameters (performer's ω) built where the inputs live, in their dtype.
  BaselineAttentionParams params = init_baseline_attention_params(c, x[0].size(1), x[0].size(3), x[0].dtype());
  for (Tensor* t : {&params.omega, &params.feature_w, &params.feature_b, &params.mix_logit, &params.norm_weight})
    if (t->defined()) *t = t->detach().to(x[0].device());
  return baseline_attention(c, params, x[0], x[1], x[2]);
}

std::vector<OpCase> cases() {
  const int32_t V = 11;
  std::vector<OpCase> t = {
      {"add", {{3, 5}, {3, 5}}, [](auto& x) { return ops::add(x[0], x[1]); }},
      {"add_broadcast", {{2, 3, 5}, {5}}, [](auto& x) { return ops::add(x[0], x[1]); }},
      {"sub_broadcast", {{4, 6}, {6}}, [](auto& x) { return ops::sub(x[0], x[1]); }},
      {"mul_broadcast", {{2, 3, 4}, {3, 4}}, [](auto& x) { return ops::mul(x[0], x[1]); }},
      {"scale", {{7, 3}}, [](auto& x) { return ops::scale(x[0], -0.75); }},
      {"matmul", {{2, 5, 4}, {2, 4, 3}}, [](auto& x) { return ops::matmul(x[0], x[1]); }},
      {"matmul_trans_b_broadcast", {{2, 5, 4}, {3, 4}}, [](auto& x) { return ops::matmul(x[0], x[1], false, true); }},
      {"matmul_trans_a", {{2, 4, 5}, {2, 4, 3}}, [](auto& x) { return ops::matmul(x[0], x[1], true, false); }},
      {"linear_bias", {{6, 8}, {5, 8}, {5}}, [](auto& x) { return ops::linear(x[0], x[1], x[2]); }},
      {"silu", {{4, 9}}, [](auto& x) { return ops::silu(x[0]); }},
      {"swiglu", {{4, 9}, {4, 9}}, [](auto& x) { return ops::swiglu(x[0], x[1]); }},
      {"rmsnorm", {{5, 8}, {8}}, [](auto& x) { return ops::rmsnorm(x[0], x[1], 1e-5); }},
      {"rope", {{2, 3, 5, 8}}, [](auto& x) { return ops::rope(x[0], 10000.0, 3); }},
      {"reshape_transpose", {{2, 3, 4}}, [](auto& x) { return ops::transpose(ops::reshape(x[0], {3, 2, 4}), 0, 2); }},
      {"slice", {{3, 6, 2}}, [](auto& x) { return ops::slice(x[0], 1, 2, 5); }},
      {"concat", {{2, 3, 4}, {2, 1, 4}}, [](auto& x) { return ops::concat({x[0], x[1]}, 1); }},
      {"sum", {{4, 5}}, [](auto& x) { return ops::sum(x[0]); }},
      {"mean", {{4, 5}}, [](auto& x) { return ops::mean(x[0]); }},
      {"sum_last", {{3, 4, 5}}, [](auto& x) { return ops::sum_last(x[0]); }},
      {"mse", {{4, 6}, {4, 6}}, [](auto& x) { return ops::mse(x[0], x[1]); }},
      {"kl_divergence", {{6, V}, {6, V}}, [](auto& x) { return ops::kl_divergence(x[0], x[1], 2.0); }},
      {"jsd", {{6, V}, {6, V}}, [](auto& x) { return ops::bounded_divergence(x[0], x[1], false); }},
      {"tvd", {{6, V}, {6, V}}, [](auto& x) { return ops::bounded_divergence(x[0], x[1], true); }},
      {"dropout", {{5, 9}}, [](auto& x) { return ops::dropout(x[0], 0.3, 1234); }},
      {"cross_entropy",
       {{6, V}, {6}},
       [](auto& x) { return ops::cross_entropy(x[0], x[1]); },
       [V](size_t i, const Shape& s, Philox& rng) { return ids_for(i, s, rng, 1, V); }},
      {"linear_cross_entropy",
       {{7, 6}, {V, 6}, {7}},
       [](auto& x) { return ops::linear_cross_entropy(x[0], x[1], x[2], 3); },
       [V](size_t i, const Shape& s, Philox& rng) { return ids_for(i, s, rng, 2, V); }},
      {"embedding",
       {{V, 6}, {2, 5}},
       [](auto& x) { return ops::embedding(x[0], x[1]); },
       [V](size_t i, const Shape& s, Philox& rng) { return ids_for(i, s, rng, 1, V); }},
      {"causal_attention_gqa",
       {{1, 4, 7, 8}, {1, 2, 7, 8}, {1, 2, 7, 8}},
       [](auto& x) { return ops::causal_attention(x[0], x[1], x[2]); },
       nullptr,
       5e-5},
      {"tree_attention_forward",  // q, committed k / v (3 keys), the 5 nodes' k / v; a tree with two roots
       {{1, 4, 5, 8}, {1, 2, 3, 8}, {1, 2, 3, 8}, {1, 2, 5, 8}, {1, 2, 5, 8}},
       [](auto& x) { return ops::tree_attention(x[0], x[1], x[2], x[3], x[4], {-1, 0, 0, 1, -1}); },
       nullptr,
       5e-5},
      {"aug_attention",
       {{1, 4, 9, 8}, {1, 2, 9, 8}, {1, 2, 9, 8}, {4, 3}, {}, {}},
       [](auto& x) { return ops::aug_attention(x[0], x[1], x[2], x[3], x[4], x[5], small_aug()); },
       nullptr,
       5e-5},
  };
  for (BaselinePreset p : {BaselinePreset::Elu, BaselinePreset::Relu, BaselinePreset::Performer, BaselinePreset::Cosformer,
                         BaselinePreset::Yoso, BaselinePreset::Window}) {
    t.push_back({std::string("baseline_attention_") + baseline_preset_name(p),
                 {{1, 2, 9, 8}, {1, 2, 9, 8}, {1, 2, 9, 8}},
                 [p](auto& x) { return baseline_attention_of(p, x); },
                 nullptr,
                 1e-4});
  }
  return t;
}

struct Row {
  OpCase op;
  Device device;
  DType dtype;
};

std::string row_name(const Row& r) {
  std::string dev = device_name(r.device);
  for (char& ch : dev)
    if (ch == '-') ch = '_';
  return r.op.name + "__" + dev + "_" + dtype_name(r.dtype);
}

void PrintTo(const Row& r, std::ostream* os) { *os << row_name(r); }

std::vector<Row> rows() {
  std::vector<Row> out;
  for (const OpCase& c : cases())
    for (Device d : {Device::CPU, Device::TestHost, Device::CUDA})
      for (DType dt : {DType::F32, DType::F64})
        if (!(d == Device::CPU && dt == DType::F64)) out.push_back({c, d, dt});  // CPU f64 is the reference
  return out;
}

struct OpRun {
  Tensor out;                 // on the CPU, f64
  std::vector<Tensor> grads;  // on the CPU, f64; undefined for integer inputs
  Device out_device = Device::CPU;
  std::vector<Device> grad_devices;
};

// Moves the inputs to (device, dtype), runs forward and the backward of Σ w ⊙ out, and brings the results back.
OpRun run_on(const OpCase& c, const std::vector<Tensor>& inputs, const Tensor& weights, Device device, DType dtype) {
  std::vector<Tensor> leaves;
  for (const Tensor& x : inputs) {
    const bool is_float = x.dtype() == DType::F64;
    Tensor leaf = (is_float ? x.to(dtype) : x).to(device).clone();
    if (is_float) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  OpRun r;
  Tape tape;
  {
    TapeScope scope(tape);
    Tensor out = c.fn(leaves);
    r.out_device = out.device();
    if (out.requires_grad())  // forward-only ops (tree verification) record nothing
      backward(ops::sum(ops::mul(out, weights.to(dtype).to(device).reshape(out.shape()))));
    r.out = out.detach().to(Device::CPU).to(DType::F64);
  }
  for (const Tensor& l : leaves) {
    Tensor g = l.requires_grad() ? l.grad() : Tensor();
    r.grad_devices.push_back(g.defined() ? g.device() : device);
    r.grads.push_back(g.defined() ? g.to(Device::CPU).to(DType::F64) : Tensor());
  }
  return r;
}

// |got − ref| ≤ tol · (|ref| + rms(ref)) elementwise; names the worst element.
void expect_close(const std::string& what, const Tensor& ref, const Tensor& got, double tol) {
  ASSERT_TRUE(got.defined()) << what << ": missing";
  ASSERT_EQ(ref.shape(), got.shape()) << what;
  const auto r = ref.to_vector<double>(), g = got.to_vector<double>();
  double ss = 0;
  for (double v : r) ss += v * v;
  const double rms = r.empty() ? 0 : std::sqrt(ss / static_cast<double>(r.size()));
  size_t bad = 0, worst = 0;
  double worst_err = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const double err = std::fabs(g[i] - r[i]) / (std::fabs(r[i]) + rms + 1e-300);
    if (!(err <= tol)) ++bad;
    if (!(err <= worst_err)) worst_err = std::isnan(err) ? INFINITY : err, worst = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << r.size() << " elements off; worst at " << worst << ": "
                     << g[worst] << " vs reference " << r[worst] << " (scaled error " << worst_err << ", tolerance "
                     << tol << ")";
}

class BackendConformance : public ::testing::TestWithParam<Row> {};

TEST_P(BackendConformance, MatchesCpuF64) {
  const Row& row = GetParam();
  linspec::testing::install_test_host_device();
  if (!backend_present(row.device))
    GTEST_SKIP() << device_name(row.device) << " backend not present here (no GPU or built without CUDA): "
                 << row_name(row) << " not run";
  Philox rng(77);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < row.op.shapes.size(); ++i)
    inputs.push_back(row.op.make_input ? row.op.make_input(i, row.op.shapes[i], rng)
                                       : random_normal(row.op.shapes[i], DType::F64, rng, 0.7));
  // Every output element weighs into the scalar: the shape is only known from the reference run.
  const Tensor probe = row.op.fn(inputs);
  Philox wr(5);
  const Tensor weights = random_normal(probe.shape(), DType::F64, wr);

  const OpRun ref = run_on(row.op, inputs, weights, Device::CPU, DType::F64);
  const OpRun got = run_on(row.op, inputs, weights, row.device, row.dtype);
  // f64 on another backend differs from the CPU only by summation order (or not at all on TestHost).
  const double tol = row.dtype == DType::F64 ? 1e-10 : row.op.f32_tol;
  EXPECT_EQ(got.out_device, row.device) << "the output left the operands' device";
  expect_close(row_name(row) + " output", ref.out, got.out, tol);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!ref.grads[i].defined()) continue;
    EXPECT_EQ(got.grad_devices[i], row.device) << "gradient of input " << i << " left the device";
    expect_close(row_name(row) + " grad of input " + std::to_string(i), ref.grads[i], got.grads[i], tol * 4);
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, BackendConformance, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return row_name(info.param); });

// ---- the dispatch contract itself ----

TEST(BackendDispatch, OperandsOnTwoDevicesNameTheOpAndBothDevices) {
  linspec::testing::install_test_host_device();
  Tensor a = Tensor::zeros({3});
  Tensor b = Tensor::zeros({3}, DType::F32, Device::TestHost);
  try {
    ops::add(a, b);
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("cpu"), std::string::npos) << m;
    EXPECT_NE(m.find("test-host"), std::string::npos) << m;
  }
}

TEST(BackendDispatch, HostAccessToADeviceTensorFailsNamingTheDevice) {
  linspec::testing::install_test_host_device();
  Tensor t = Tensor::zeros({2, 2}, DType::F32, Device::TestHost);
  try {
    (void)t.data<float>();
    FAIL() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("test-host"), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.to(Device::CPU).to_vector<float>(), std::vector<float>(4, 0.f));  // an explicit copy is fine
}

TEST(BackendDispatch, AMissingKernelNamesTheKernelAndTheDevice) {
  static kernels::Backend partial = kernels::cpu_backend();
  partial.name = "test-host";
  partial.f32.activation.silu_forward = nullptr;
  register_backend(Device::TestHost, &partial);
  Tensor x = Tensor::zeros({4}, DType::F32, Device::TestHost);
  try {
    ops::silu(x);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("silu_forward: not implemented on device test-host"), std::string::npos)
        << e.what();
  }
  linspec::testing::install_test_host_device();  // the full table again for the other tests
}

TEST(BackendDispatch, OpsOnADeviceMakeNoCrossDeviceCopies) {
  linspec::testing::install_test_host_device();
  Philox rng(9);
  Tensor x = random_normal({4, 8}, DType::F32, rng).to(Device::TestHost);
  Tensor w = random_normal({6, 8}, DType::F32, rng).to(Device::TestHost).set_requires_grad(true);
  Tensor g = random_normal({8}, DType::F32, rng).to(Device::TestHost).set_requires_grad(true);
  Tensor ids = random_ints({4}, 0, 6, rng).to(Device::TestHost);
  linspec::testing::reset_cross_device_copies();
  Tape tape;
  {
    TapeScope scope(tape);
    Tensor h = ops::silu(ops::linear(ops::rmsnorm(x, g, 1e-5), w));
    backward(ops::cross_entropy(ops::transpose(ops::transpose(h, 0, 1), 0, 1), ids));
  }
  const auto c = linspec::testing::cross_device_copies();
  // The loss and its gradient live on the device; the only host traffic would be an implicit copy.
  EXPECT_EQ(c.to_host, 0) << c.to_host_bytes << " bytes copied to the host";
  EXPECT_EQ(c.from_host, 0) << c.from_host_bytes << " bytes copied from the host";
  EXPECT_EQ(w.grad().device(), Device::TestHost);
  EXPECT_EQ(g.grad().device(), Device::TestHost);
}

TEST(DeviceSelection, UnknownAndUnavailableDevicesAreInputErrorsNamingTheKey) {
  try {
    resolve_device("tpu", "run.yaml: train.device");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("run.yaml: train.device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tpu"), std::string::npos) << e.what();
  }
  EXPECT_EQ(resolve_device("cpu", "--device"), Device::CPU);
  EXPECT_EQ(resolve_device("auto", "--device"), cuda_available() ? Device::CUDA : Device::CPU);
  if (!cuda_available()) {
    try {
      resolve_device("cuda", "--device");
      FAIL() << "no error";
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("--device"), std::string::npos) << m;
      // Which of the two reasons applies to this binary and machine.
      EXPECT_NE(m.find(kernels::cuda_backend() ? "no CUDA device is visible" : "built without CUDA"),
                std::string::npos)
          << m;
    }
  }
}

}  // namespace
