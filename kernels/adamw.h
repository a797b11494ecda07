// The fused AdamW update over fp32 master weights and fp32 moments (see trainer/adamw.h for the rule).
#pragma once
#include <cstdint>
#include <vector>

namespace linspec::kernels {

// Per-tensor scalars, precomputed once per step so the inner loop is multiply-adds, one sqrt, one divide.
struct AdamWCoeffs {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float decay = 1.f;         // 1 - lr * weight_decay
  float step_size = 0.f;     // lr / (1 - beta1^t)
  float inv_sqrt_bc2 = 1.f;  // 1 / sqrt(1 - beta2^t)
  float grad_scale = 1.f;    // the gradient is read as grad · grad_scale (clipping, fused: no separate pass)
};

struct AdamWTensor {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t n;
  AdamWCoeffs c;
};

struct AdamWKernels {
  // Updates every tensor in one pass (work split into equal chunks across all tensors, so a few huge embeddings
  // and many small norms balance across threads / blocks).
  void (*update)(const std::vector<AdamWTensor>& tensors);
};

}  // namespace linspec::kernels
