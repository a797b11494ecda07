// Differentiable ops. Each takes and returns Tensors, computes the forward with kernels/ and, when an
// input requires grad, records a hand-written backward on the current tape (core/autograd.h).
// Floating inputs are f32 or f64 (f64 exists for gradient checking); index inputs are i32.
#pragma once
#include "core/tensor.h"

namespace linspec::ops {

// ---- GEMM ----
// Auto: follow the thread-local default below. F32BatchInvariant: f32, and a 2-D weight operand taken transposed
// (linear()) runs the backend's weight-row kernel, whose c[i, j] does not depend on M — the `--weights f32` inference
// path, so that verifying a tree reproduces decoding bit for bit (other operands: as F32).
enum class MatmulPrecision { Auto, F32, BF16, F32BatchInvariant };
void set_default_matmul_precision(MatmulPrecision p);
MatmulPrecision default_matmul_precision();
// C = op(A) · op(B); A [..., M, K] (or [..., K, M] with trans_a), B [..., K, N] (or [..., N, K] with
// trans_b). Leading batch dims broadcast (B may be 2-D for a weight). BF16 rounds the inputs to bf16 and
// accumulates in f32 (oneDNN AMX/AVX-512-BF16 path); the output stays f32.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false,
              MatmulPrecision precision = MatmulPrecision::Auto);
// A bf16 B (an inference weight, 2-D) with f32 A: as linear() uses it, the batch-invariant weight-row kernel with
// unrounded f32 activations (otherwise A rounded to bf16 for a bf16 GEMM), f32 out; forward only. A q8 B (quantize_q8's packed rows, as linear()'s weight): int8 GEMM, f32 out; forward only.
// x [..., in] · Wᵀ with W [out, in] (+ bias [out]): the nn.Linear convention of HF checkpoints.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              MatmulPrecision precision = MatmulPrecision::Auto);

// A weight W [out, in] as Q8 packed rows (kernels/q8_format.h: int8 per 32-input block with an f32 scale) on W's
// device, for linear(): `--weights int8`. Packed on the host.
Tensor quantize_q8(const Tensor& w);

// ---- elementwise (same shapes, or b broadcast over the leading dims of a: b.shape is a suffix of a.shape) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);
Tensor silu(const Tensor& x);
// SwiGLU as in LLaMA MLPs: silu(gate) * up.
Tensor swiglu(const Tensor& gate, const Tensor& up);
// Inverted dropout with probability p in [0, 1): the mask is a function of (key, element index) only
// (kernels/philox.h), drawn on x's device, the same on every backend, and redrawn in the backward (nothing stored).
Tensor dropout(const Tensor& x, double p, uint64_t key);

// ---- shape (differentiable views / copies) ----
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, int64_t a, int64_t b);  // result is contiguous
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);

// ---- reductions ----
Tensor sum(const Tensor& x);   // scalar
Tensor mean(const Tensor& x);  // scalar
Tensor sum_last(const Tensor& x);  // [..., n] -> [...]

// ---- layers ----
// table [V, D], ids i32 [...] -> [..., D]
Tensor embedding(const Tensor& table, const Tensor& ids);
// y = x / sqrt(mean(x²) + eps) * weight, over the last dim.
Tensor rmsnorm(const Tensor& x, const Tensor& weight, double eps);
// HF rotate-half RoPE on x [B, H, T, d]: pairs (i, i + d/2), angle (pos0 + t) · theta^(-2i/d).
// `inv_freq` (d/2 values) overrides the default frequencies (rope_scaling variants); may be undefined.
Tensor rope(const Tensor& x, double theta, int64_t pos0 = 0, const std::vector<float>& inv_freq = {});
// The same with the frequencies as a [d/2] tensor on x's device (a model keeps them there: no copy per call).
Tensor rope(const Tensor& x, int64_t pos0, const Tensor& inv_freq);
// Row n of x [B, H, N, d] rotated to positions[n] (any order, repeats allowed: tree nodes), bit for bit as
// rope(x, positions[n], inv_freq) rotates a token there. One table over the positions' span, one pass over x.
// Forward only.
Tensor rope_at_positions(const Tensor& x, const std::vector<int64_t>& positions, const Tensor& inv_freq);
// The same in two parts, for a pass that rotates many tensors at the same positions (every layer's q and k of a
// verified tree): the cos / sin rows [n, d/2] of the positions once, in `dtype` on inv_freq's device, then each x.
struct RopeRows {
  Tensor cos, sin;
};
RopeRows rope_rows_at_positions(const std::vector<int64_t>& positions, const Tensor& inv_freq, DType dtype);
Tensor rope_with_rows(const Tensor& x, const RopeRows& rows);
// Causal softmax attention with GQA: q [B, Hq, T, d], k/v [B, Hkv, S, d] with Hq % Hkv == 0 and the
// query at row t attending to keys s <= t + (S - T) (so a query block can follow a cached prefix).
// Scale defaults to 1/sqrt(d). Never materialises more than a tile of the T×S matrix.
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale = 0.0);
// Tree verification (no tape): q [B, Hq, N, d] for N draft nodes following P committed keys cache_k / cache_v
// [B, Hkv, P, d]; node_k / node_v [B, Hkv, N, d] are the nodes' own. Node i attends to the whole prefix, to its
// ancestors along parent[] (-1: a root; parents come first) and to itself. Scale 1/sqrt(d).
Tensor tree_attention(const Tensor& q, const Tensor& cache_k, const Tensor& cache_v, const Tensor& node_k,
                      const Tensor& node_v, const std::vector<int32_t>& parent);

// ---- losses ----
constexpr int32_t kIgnoreIndex = -100;
// Mean next-token cross-entropy over rows whose target != ignore_index. logits [N, V], targets i32 [N].
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index = kIgnoreIndex);
// cross_entropy(linear(hidden, weight), targets) without the [N, V] logits: rows in chunks of `chunk` (one chunk's
// logits and their gradient exist at a time; the LM head of a 1024-token SmolLM2 step is 2 × 200 MB unfused). The
// forward also computes the gradients of the summed loss for hidden [..., D] and weight [V, D] when they require
// grad; the backward scales them by upstream / counted rows (one pass, on their device). Same GEMMs, same values as
// unfused.
Tensor linear_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets, int64_t chunk = 256,
                            MatmulPrecision precision = MatmulPrecision::Auto, int32_t ignore_index = kIgnoreIndex);
// τ² · mean_rows KL(softmax(teacher/τ) ‖ softmax(student/τ)); both [N, V]. Differentiable in both.
Tensor kl_divergence(const Tensor& student_logits, const Tensor& teacher_logits, double temperature = 1.0);
// mean((a - b)²)
Tensor mse(const Tensor& a, const Tensor& b);
// mean_rows JSD(softmax(target) ‖ softmax(draft)) (tvd = false) or TVD = ½ Σ|p − q|: the bounded divergences of
// draft-model distillation; both [N, V], differentiable in the draft only (the target is a constant).
Tensor bounded_divergence(const Tensor& draft_logits, const Tensor& target_logits, bool tvd);

}  // namespace linspec::ops
