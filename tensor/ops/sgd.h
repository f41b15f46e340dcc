// Fused SGD update (with momentum, dampening, Nesterov and L2 weight decay), in place.
// PyTorch's torch.optim.SGD update:
//
//   d ← g + wd·w
//   if momentum μ ≠ 0:
//     b ← d                          on the parameter's first step (no dampening)
//     b ← μ·b + (1 − dampening)·d    afterwards
//     d ← d + μ·b  (Nesterov)   or   d ← b
//   w ← w − lr·d
//
// Shapes: param, grad and (when μ ≠ 0) momentum_buffer all (N...) with one shape, dtype (f32 or
// f64) and device, and contiguous. Not differentiable. CPU: a parallel vectorized loop; CUDA: one
// launch per tensor.
#pragma once
#include "tensor/tensor.h"

namespace ember {

struct SGDStep {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first_step = true;  // initializes the momentum buffer to d
};

// momentum_buffer: undefined when momentum == 0.
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& step);

}  // namespace ember
