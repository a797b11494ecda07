// matmul / linear: forward and backward through the GEMMs of the operands' backend.
#include <chrono>

#include "core/device.h"
#include "core/gemm_observer.h"
#include "core/ops/dispatch.h"
#include "kernels/q8_format.h"

namespace linspec::ops {
namespace {
thread_local MatmulPrecision default_precision = MatmulPrecision::F32;
MatmulPrecision resolve(MatmulPrecision p) { return p == MatmulPrecision::Auto ? default_precision : p; }

// Runs C = op(A) op(B) (+ beta C) on contiguous operands of any float dtype the kernels support.
void run_gemm(const kernels::GemmShape& s, const Tensor& a, const Tensor& b, Tensor& c, float beta, MatmulPrecision p) {
  const auto& mm = backend(a.device()).matmul;
  if (a.dtype() == DType::F64) {
    detail::kernel(mm.gemm_f64, "gemm_f64", a)(s, a.device_data<double>(), b.device_data<double>(),
                                               c.device_data<double>(), beta);
  } else if (p == MatmulPrecision::BF16) {
    detail::kernel(mm.gemm_f32_via_bf16, "gemm_f32_via_bf16", a)(s, a.device_data<float>(), b.device_data<float>(),
                                                                 c.device_data<float>(), beta);
  } else {
    detail::kernel(mm.gemm_f32, "gemm_f32", a)(s, a.device_data<float>(), b.device_data<float>(),
                                               c.device_data<float>(), beta);
  }
}

// run_gemm, reported to the thread's GemmObserver when one is installed (core/gemm_observer.h).
void gemm(const kernels::GemmShape& s, const Tensor& a, const Tensor& b, Tensor& c, float beta, MatmulPrecision p,
          GemmRole role) {
  GemmObserver* obs = GemmObserver::current();
  if (!obs) return run_gemm(s, a, b, c, beta, p);
  using clock = std::chrono::steady_clock;
  device_synchronize(a.device());
  const auto t0 = clock::now();
  run_gemm(s, a, b, c, beta, p);
  device_synchronize(a.device());
  obs->on_gemm(s, role, a.dtype(), a.dtype() != DType::F64 && p == MatmulPrecision::BF16, a.device(),
               std::chrono::duration<double>(clock::now() - t0).count());
}

// c [..., N] = a [..., K] · Wᵀ through a backend's batch-invariant weight-row kernel (gemm_bf16_weight,
// gemm_f32_weight): W [N, K] contiguous in the element type W_, f32 activations. Forward only; shapes checked by the
// caller.
template <typename W_>
Tensor weight_rows_product(const Tensor& a_in, const Tensor& w_in,
                           void (*kernel)(int64_t, int64_t, int64_t, const float*, const W_*, float*)) {
  const Tensor a = a_in.contiguous(), w = w_in.contiguous();
  const int64_t K = a.size(-1), M = a.numel() / std::max<int64_t>(K, 1), N = w.size(0);
  LINSPEC_CHECK(w.size(1) == K, "matmul: inner dims differ: ", shape_str(a.shape()), " x ", shape_str(w.shape()),
                "ᵀ");
  Shape out_shape(a.shape().begin(), a.shape().end() - 1);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(out_shape, DType::F32, a.device());
  kernel(M, N, K, a.device_data<float>(), static_cast<const W_*>(w.raw_data()), c.device_data<float>());
  return c;
}

// f32 activations times a weight stored in bf16 (inference weights, LlamaModel::set_inference_weights): the GEMM
// reads the weight's 2 bytes per element, half of f32's — decode is bound by exactly those bytes. As linear() uses it
// (W [N, K], trans_b) the backend's batch-invariant kernel runs with unrounded f32 activations; otherwise the
// activations are rounded to bf16 for the library's bf16 GEMM. Forward only.
Tensor matmul_bf16_weight(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  detail::check_float(a_in, "matmul", "a");
  LINSPEC_CHECK(a_in.dtype() == DType::F32, "matmul: a bf16 weight needs f32 activations, got ",
                dtype_name(a_in.dtype()));
  LINSPEC_CHECK(!any_requires_grad({&a_in, &b_in}), "matmul: bf16 weights are inference-only (no gradient)");
  detail::backend_of("matmul", {&a_in, &b_in});
  LINSPEC_CHECK(!trans_a && b_in.dim() == 2 && a_in.dim() >= 2, "matmul: a bf16 weight must be a 2-D B operand, got ",
                shape_str(b_in.shape()));
  const Tensor b = b_in.contiguous();
  const int64_t K = a_in.size(-1), M = a_in.numel() / std::max<int64_t>(K, 1);
  const int64_t Kb = trans_b ? b.size(1) : b.size(0), N = trans_b ? b.size(0) : b.size(1);
  LINSPEC_CHECK(K == Kb, "matmul: inner dims differ: ", shape_str(a_in.shape()), " x ", shape_str(b.shape()),
                (trans_b ? "ᵀ" : ""));
  const auto& mm = backend(a_in.device()).matmul;
  if (trans_b && mm.gemm_bf16_weight) return weight_rows_product(a_in, b, mm.gemm_bf16_weight);
  Shape out_shape(a_in.shape().begin(), a_in.shape().end() - 1);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(out_shape, DType::F32, a_in.device());
  const Tensor a = a_in.contiguous().to(DType::BF16);
  detail::kernel(mm.gemm_bf16, "gemm_bf16", a)({1, M, N, K, false, trans_b, false}, a.device_data<uint16_t>(),
                                               b.device_data<uint16_t>(), c.device_data<float>(), 0.f);
  return c;
}
// f32 activations times a Q8 weight (kernels/q8_format.h; `--weights int8`): the GEMM reads ~1.1 bytes per weight.
// Only as linear() uses it: W [N, K] packed as [N, q8_row_bytes(K)], K taken from the activations. Forward only.
Tensor matmul_q8_weight(const Tensor& a_in, const Tensor& w, bool trans_a, bool trans_b) {
  LINSPEC_CHECK(a_in.dtype() == DType::F32, "matmul: a q8 weight needs f32 activations, got ",
                dtype_name(a_in.dtype()));
  LINSPEC_CHECK(!any_requires_grad({&a_in}), "matmul: q8 weights are inference-only (no gradient)");
  detail::backend_of("matmul", {&a_in, &w});
  LINSPEC_CHECK(!trans_a && trans_b && w.dim() == 2 && a_in.dim() >= 2 && w.is_contiguous(),
                "matmul: a q8 weight must be the packed [out, bytes] B operand of linear(), got ",
                shape_str(w.shape()));
  const Tensor a = a_in.contiguous();
  const int64_t K = a.size(-1), M = a.numel() / std::max<int64_t>(K, 1), N = w.size(0);
  LINSPEC_CHECK(w.size(1) == kernels::q8_row_bytes(K), "matmul: q8 rows of ", w.size(1), " bytes do not hold ", K,
                " inputs (", kernels::q8_row_bytes(K), " bytes)");
  Shape out_shape(a.shape().begin(), a.shape().end() - 1);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(out_shape, DType::F32, a.device());
  detail::kernel(backend(a.device()).matmul.gemm_q8, "gemm_q8", a)(
      M, N, K, a.device_data<float>(), static_cast<const uint8_t*>(w.raw_data()), c.device_data<float>());
  return c;
}
}  // namespace

void detail::gemm_into(const kernels::GemmShape& s, const Tensor& a, const Tensor& b, Tensor& c, float beta,
                       MatmulPrecision precision, GemmRole role) {
  gemm(s, a, b, c, beta, resolve(precision), role);
}

Tensor quantize_q8(const Tensor& w) {
  LINSPEC_CHECK(w.dim() == 2 && is_floating(w.dtype()), "quantize_q8: a 2-D float weight, got ",
                dtype_name(w.dtype()), " ", shape_str(w.shape()));
  const Tensor host = w.detach().to(Device::CPU).to(DType::F32).contiguous();
  const int64_t N = w.size(0), K = w.size(1);
  Tensor packed = Tensor::empty({N, kernels::q8_row_bytes(K)}, DType::Q8);
  kernels::q8_pack_rows(host.data<float>(), N, K, static_cast<uint8_t*>(packed.raw_data()));
  return packed.to(w.device());
}

void set_default_matmul_precision(MatmulPrecision p) {
  default_precision = p == MatmulPrecision::Auto ? MatmulPrecision::F32 : p;
}
MatmulPrecision default_matmul_precision() { return default_precision; }

Tensor matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b, MatmulPrecision precision) {
  if (b_in.defined() && b_in.dtype() == DType::BF16) return matmul_bf16_weight(a_in, b_in, trans_a, trans_b);
  if (b_in.defined() && b_in.dtype() == DType::Q8) return matmul_q8_weight(a_in, b_in, trans_a, trans_b);
  detail::check_float(a_in, "matmul", "a");
  detail::check_float(b_in, "matmul", "b");
  detail::check_same_dtype(a_in, b_in, "matmul");
  detail::backend_of("matmul", {&a_in, &b_in});
  LINSPEC_CHECK(a_in.dim() >= 2 && b_in.dim() >= 2, "matmul: operands need >= 2 dims, got ", shape_str(a_in.shape()),
                " and ", shape_str(b_in.shape()));
  MatmulPrecision p = resolve(precision);
  if (p == MatmulPrecision::F32BatchInvariant) {
    const auto& mm = backend(a_in.device()).matmul;
    if (a_in.dtype() == DType::F32 && trans_b && !trans_a && b_in.dim() == 2 && mm.gemm_f32_weight &&
        !any_requires_grad({&a_in, &b_in}))
      return weight_rows_product(a_in, b_in, mm.gemm_f32_weight);
    p = MatmulPrecision::F32;
  }
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t M = trans_a ? a.size(-1) : a.size(-2);
  const int64_t K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2);
  const int64_t N = trans_b ? b.size(-2) : b.size(-1);
  LINSPEC_CHECK(K == Kb, "matmul: inner dims differ: ", shape_str(a.shape()), (trans_a ? "ᵀ" : ""), " x ",
                shape_str(b.shape()), (trans_b ? "ᵀ" : ""));
  // From the leading dims, not numel / (M K): that is 0 / 0 when a dim is empty.
  const int64_t batch = shape_numel(Shape(a.shape().begin(), a.shape().end() - 2));
  const int64_t batch_b = shape_numel(Shape(b.shape().begin(), b.shape().end() - 2));
  LINSPEC_CHECK(batch_b == batch || batch_b == 1, "matmul: batch dims of ", shape_str(a.shape()), " and ",
                shape_str(b.shape()), " do not broadcast");
  const bool bcast = batch_b == 1 && batch != 1;
  Shape out_shape(a.shape().begin(), a.shape().end() - 2);
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(out_shape, a.dtype(), a.device());
  gemm({batch, M, N, K, trans_a, trans_b, bcast}, a, b, c, 0.f, p, GemmRole::Forward);

  if (any_requires_grad({&a_in, &b_in})) {
    record_op(c, [a, b, a_in, b_in, trans_a, trans_b, batch, M, N, K, bcast, p](const Tensor& g_in) {
      Tensor g = g_in.contiguous();
      if (a_in.requires_grad()) {
        // dA = dC · op(B)ᵀ  (stored as A's layout: transpose the product when A was transposed)
        Tensor ga = Tensor::empty(trans_a ? Shape{batch, M, K} : a.shape(), a.dtype(), a.device());
        gemm({batch, M, K, N, false, !trans_b, bcast}, g, b, ga, 0.f, p, GemmRole::GradA);
        accumulate_grad(a_in, trans_a ? ga.transpose(-1, -2).contiguous().reshape(a.shape()) : ga);
      }
      if (b_in.requires_grad()) {
        // dB = op(A)ᵀ · dC, summed over the batch when B was broadcast. When B is a leaf whose gradient buffer
        // already exists (a gradient bucket, trainer/grad_sync.h) the GEMM writes into it: beta 0 over a stale
        // buffer, 1 to accumulate (gradient-accumulation fusion: no temporary, no separate add or copy pass).
        AutogradMeta* meta = b_in.autograd_meta().get();
        const bool into_grad = meta && meta->is_leaf && meta->grad.defined() && meta->grad.is_contiguous() &&
                               meta->grad.dtype() == b.dtype() && meta->grad.device() == b.device() &&
                               meta->grad.shape() == b.shape();
        Tensor gb = into_grad ? meta->grad : Tensor::empty(b.shape(), b.dtype(), b.device());
        const float beta = into_grad && !meta->grad_stale ? 1.f : 0.f;
        if (bcast) {
          // Fold the batch into the reduction dim: A as [batch*M, K] (only valid when A is not transposed).
          Tensor a2 = trans_a ? a.transpose(-1, -2).contiguous() : a;
          Tensor g2 = g;
          if (!trans_b)
            gemm({1, K, N, batch * M, true, false, false}, a2, g2, gb, beta, p, GemmRole::GradB);
          else
            gemm({1, N, K, batch * M, true, false, false}, g2, a2, gb, beta, p, GemmRole::GradB);
        } else if (!trans_b) {
          gemm({batch, K, N, M, !trans_a, false, false}, a, g, gb, beta, p, GemmRole::GradB);
        } else {
          gemm({batch, N, K, M, true, trans_a, false}, g, a, gb, beta, p, GemmRole::GradB);
        }
        if (into_grad) meta->grad_stale = false;
        else accumulate_grad(b_in, gb);
      }
    });
  }
  return c;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, MatmulPrecision precision) {
  LINSPEC_CHECK(weight.dim() == 2, "linear: weight must be 2-D, got ", shape_str(weight.shape()));
  Tensor y = matmul(x, weight, false, true, precision);
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace linspec::ops
