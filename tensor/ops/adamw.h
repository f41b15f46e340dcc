// Fused Adam / AdamW update: one pass over (w, g, m, v) per parameter tensor, in place.
// PyTorch's torch.optim.Adam / AdamW update, for step t = 1, 2, ... (t counted per parameter):
//
//   AdamW (decoupled):  w ← w · (1 − lr·wd)                    Adam (L2):  g ← g + wd·w
//   m ← β₁·m + (1 − β₁)·g                  (computed as m + (1 − β₁)(g − m), PyTorch's lerp)
//   v ← β₂·v + (1 − β₂)·g²
//   step_size = lr / (1 − β₁ᵗ)
//   w ← w − step_size · m / (√v / √(1 − β₂ᵗ) + ε)
//
// Shapes: param, grad, exp_avg (m), exp_avg_sq (v) all (N...) with one shape and device, and
// contiguous (optimizers create them so). Not differentiable: it is the optimizer's step.
// Dtypes: param and grad share one; the moments are in optimizer_state_dtype of it:
//   f32 or f64 param: moments of the same dtype, arithmetic in it (CPU and CUDA);
//   bf16 or f16 param (CUDA only): f32 moments, arithmetic in f32 on values read from the
//     16-bit param and grad, the new weight rounded to the param's dtype once per step. There
//     is no f32 master copy: an update smaller than half a bf16 ulp of the weight (|w|·2⁻⁹) is
//     lost. To train with f32 master weights (DESIGN.md), keep the parameters f32 and compute
//     in bf16 from casts; bf16 parameters suit short fine-tuning where memory decides.
// The scalar coefficients are computed in double on the host and applied in the arithmetic type.
// CPU: a parallel loop over chunks, vectorized. CUDA: one launch per tensor, one thread an
// element, grid-stride; or, through adamw_update_multi, every tensor in one launch.
#pragma once
#include <cstdint>
#include <vector>

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

// The update of adamw_update for every tensor i, with its own step (lr, weight decay and t may
// differ: parameter groups, parameters first updated at different steps). On CUDA it is one
// launch per parameter dtype (the multi-tensor kernel): a table of the tensors' pointers,
// sizes and coefficients, and of chunks of at most 65536 elements, is copied to the device,
// and blocks take chunks (grid-stride over chunks, threads over a chunk's elements). On the CPU
// it is adamw_update per tensor. Results equal adamw_update's, element for element (the same
// arithmetic in the same order). All tensors on one device; each checked as adamw_update does.
void adamw_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                        const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                        const std::vector<AdamWStep>& steps);

// The dtype optimizer state (moments, momentum buffers) keeps for a parameter of dtype `param`:
// f32 for f32, bf16 and f16; f64 for f64.
DType optimizer_state_dtype(DType param);

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
