// Fused Adam / AdamW update: one pass over (w, g, m, v) per parameter tensor, in place.
// PyTorch's torch.optim.Adam / AdamW update, for step t = 1, 2, ... (t counted per parameter):
//
//   AdamW (decoupled):  w ← w · (1 − lr·wd)                    Adam (L2):  g ← g + wd·w
//   m ← β₁·m + (1 − β₁)·g                  (computed as m + (1 − β₁)(g − m), PyTorch's lerp)
//   v ← β₂·v + (1 − β₂)·g²
//   step_size = lr / (1 − β₁ᵗ)
//   w ← w − step_size · m / (√v / √(1 − β₂ᵗ) + ε)
//
// Shapes: param, grad, exp_avg (m), exp_avg_sq (v) all (N...) with one shape, dtype (f32 or f64)
// and device, and contiguous (optimizers create them so). Not differentiable: it is the
// optimizer's step. The scalar coefficients are computed in double on the host and applied in
// the parameter's dtype.
// CPU: a parallel loop over chunks, vectorized. CUDA: one launch per tensor, one thread an
// element (a multi-tensor launch over a flat buffer comes later).
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace ember {

struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;        // t, already counting this step (1 on the first)
  bool decoupled = true;   // true: AdamW; false: Adam with L2 weight decay added to the gradient
};

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWStep& step);

// What the kernels receive: the per-step scalars, precomputed.
struct AdamWCoefficients {
  double beta1, one_minus_beta1, beta2, one_minus_beta2;
  double eps;
  double decay_factor;   // 1 − lr·wd (AdamW) or 1
  double l2;             // wd (Adam) or 0
  double step_size;      // lr / (1 − β₁ᵗ)
  double bias_correction2_sqrt;  // √(1 − β₂ᵗ): √v is divided by it, as PyTorch does
};

}  // namespace ember
