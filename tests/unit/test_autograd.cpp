// Tape semantics: leaf accumulation, no-grad mode, non-leaf grad lifetime, activation checkpointing.
#include <gtest/gtest.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"

using namespace linspec;

namespace {

Tensor randn(const Shape& shape, Philox& rng, bool requires_grad = false) {
  Tensor t = Tensor::empty(shape, DType::F64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = rng.normal();
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

TEST(Autograd, LeafGradsAccumulateUntilZeroGrad) {
  Philox rng(1);
  Tensor x = randn({5}, rng, true);
  Tape tape;
  TapeScope scope(tape);
  auto run = [&] { backward(ops::sum(ops::mul(x, x))); };  // d/dx = 2x
  run();
  run();
  ASSERT_TRUE(x.grad().defined());
  auto xv = values(x), g = values(x.grad());
  for (int i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(g[i], 4 * xv[i]);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  run();
  g = values(x.grad());
  for (int i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(g[i], 2 * xv[i]);
}

TEST(Autograd, GradFlowsThroughIntermediatesNobodyHolds) {
  // The usual case in a model: only the loss is kept; each intermediate's last handle lives in the
  // closure of the op that consumed it, which backward pops (and destroys) before the producer runs.
  Philox rng(6);
  Tensor x = randn({4, 3}, rng, true);
  Tape tape;
  TapeScope scope(tape);
  // A separate statement: temporaries of a single full-expression would all outlive backward().
  Tensor loss = ops::sum(ops::scale(ops::mul(x, x), 3.0));
  backward(loss);
  ASSERT_TRUE(x.grad().defined());
  auto xv = values(x), g = values(x.grad());
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_DOUBLE_EQ(g[i], 6 * xv[i]);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Philox rng(2);
  Tensor x = randn({3, 5}, rng, true), w = randn({7, 5}, rng, true);
  Tape tape;
  TapeScope scope(tape);
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_enabled());
    Tensor y = ops::sum(ops::mul(ops::linear(x, w), ops::linear(x, w)));
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(tape.size(), 0u);
  }
  EXPECT_TRUE(grad_enabled());
  // The same computation with grad on does record (so the check above can fail).
  Tensor y = ops::sum(ops::linear(x, w));
  EXPECT_TRUE(y.requires_grad());
  EXPECT_EQ(tape.size(), 2u);  // matmul, sum
  backward(y);
  EXPECT_EQ(tape.size(), 0u);  // backward empties the tape
}

TEST(Autograd, NestedNoGradGuardRestoresPreviousMode) {
  {
    NoGradGuard outer;
    {
      NoGradGuard inner;
    }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
}

TEST(Autograd, IntermediateGradFreedUnlessRetained) {
  Philox rng(3);
  Tensor x = randn({4, 3}, rng, true);
  Tape tape;
  TapeScope scope(tape);
  {
    Tensor y = ops::mul(x, x);
    Tensor z = ops::scale(y, 3.0);
    backward(ops::sum(z));
    EXPECT_FALSE(y.grad().defined());
    EXPECT_FALSE(z.grad().defined());
    EXPECT_TRUE(x.grad().defined());
  }
  x.zero_grad();
  {
    Tensor y = ops::mul(x, x);
    y.retain_grad();
    Tensor z = ops::scale(y, 3.0);
    backward(ops::sum(z));
    ASSERT_TRUE(y.grad().defined());
    EXPECT_FALSE(z.grad().defined());  // only the one asked for is kept
    for (double g : values(y.grad())) EXPECT_DOUBLE_EQ(g, 3.0);
    auto xv = values(x), gx = values(x.grad());
    for (size_t i = 0; i < xv.size(); ++i) EXPECT_DOUBLE_EQ(gx[i], 6 * xv[i]);
  }
}

// A block with two outputs that uses its inputs and two parameters captured from outside.
struct Block {
  Tensor w, b;
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) const {
    Tensor h = ops::matmul(in[0], w);           // [T, D]
    Tensor h2 = ops::mul(h, h);                  // saved activations the plain tape keeps
    Tensor h3 = ops::add(ops::matmul(h2, w, false, true), b);
    Tensor mixed = ops::mul(h3, in[1]);          // second input, broadcast
    return {ops::mul(mixed, mixed), ops::sum_last(h)};
  }
};

Tensor loss_of(const std::vector<Tensor>& outs) {
  return ops::add(ops::mean(outs[0]), ops::sum(ops::scale(outs[1], 0.5)));
}

struct Grads {
  std::vector<double> x, s, w, b;
};

Grads run_block(bool use_checkpoint, int64_t T, int64_t D, uint64_t seed, int64_t* live_bytes_after_forward) {
  Philox rng(seed);
  Tensor x = randn({T, D}, rng, true), s = randn({D}, rng, true);
  Tensor w = randn({D, D}, rng, true), b = randn({D}, rng, true);
  Block block{w, b};
  Tape tape;
  TapeScope scope(tape);
  const int64_t before = memory_stats(Device::CPU).current_bytes;
  Tensor loss;
  {
    std::vector<Tensor> outs = use_checkpoint ? checkpoint(block, {x, s}) : block({x, s});
    loss = loss_of(outs);
  }
  if (live_bytes_after_forward) *live_bytes_after_forward = memory_stats(Device::CPU).current_bytes - before;
  backward(loss);
  return {values(x.grad()), values(s.grad()), values(w.grad()), values(b.grad())};
}

TEST(Checkpoint, SameGradientsAsPlainComputation) {
  Grads plain = run_block(false, 5, 7, 42, nullptr);
  Grads ckpt = run_block(true, 5, 7, 42, nullptr);
  // Recomputation replays the same kernels on the same data, so results are bit-identical.
  EXPECT_EQ(ckpt.x, plain.x);
  EXPECT_EQ(ckpt.s, plain.s);
  EXPECT_EQ(ckpt.w, plain.w);
  EXPECT_EQ(ckpt.b, plain.b);
  ASSERT_EQ(plain.w.size(), 49u);
  double norm = 0;
  for (double v : plain.w) norm += v * v;
  EXPECT_GT(norm, 0.0);
}

TEST(Checkpoint, KeepsFewerLiveBytesAfterForward) {
  const int64_t T = 64, D = 96;
  const int64_t act_bytes = T * D * 8;  // one [T, D] f64 activation
  int64_t plain_bytes = 0, ckpt_bytes = 0;
  run_block(false, T, D, 7, &plain_bytes);
  run_block(true, T, D, 7, &ckpt_bytes);
  // Checkpointed: the two outputs and the loss's own small saved tensors ([T, D] + [T] + scalars), but
  // not h, h2, h3 and the products the plain tape holds for backward.
  EXPECT_LT(ckpt_bytes, plain_bytes);
  EXPECT_LE(ckpt_bytes, act_bytes + 2 * T * 8 + 1024) << "plain " << plain_bytes;
  EXPECT_GE(plain_bytes - ckpt_bytes, 3 * act_bytes) << "plain " << plain_bytes << " checkpointed " << ckpt_bytes;
}

TEST(Checkpoint, RecordsNothingUnderNoGrad) {
  Philox rng(5);
  Tensor x = randn({3, 4}, rng, true), s = randn({4}, rng), w = randn({4, 4}, rng, true), b = randn({4}, rng);
  Tape tape;
  TapeScope scope(tape);
  NoGradGuard ng;
  auto outs = checkpoint(Block{w, b}, {x, s});
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_FALSE(outs[0].requires_grad());
  EXPECT_EQ(outs[0].shape(), (Shape{3, 4}));
}

}  // namespace
