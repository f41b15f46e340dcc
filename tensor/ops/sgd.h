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
// Shapes: param, grad and (when μ ≠ 0) momentum_buffer all (N...) with one shape and device, and
// contiguous. Not differentiable. Dtypes: param and grad share one; momentum_buffer is in
// optimizer_state_dtype of it (tensor/ops/adamw.h): f32 or f64 params (CPU and CUDA) keep their
// own dtype throughout; bf16 or f16 params (CUDA only) keep an f32 buffer, compute in f32 and
// round the new weight to the param's dtype (no f32 master copy: adamw.h says what that loses).
// CPU: a parallel vectorized loop; CUDA: one launch per tensor, or every tensor in one launch
// through sgd_update_multi (the multi-tensor kernel, tensor/cuda/multi_tensor.cuh).
#pragma once
#include <vector>

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

// sgd_update for every tensor i with its own step (lr, weight decay, first_step may differ): one
// launch per parameter dtype on CUDA, sgd_update per tensor on the CPU; equal results.
// momentum_buffers[i] may be undefined where steps[i].momentum == 0.
void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_buffers, const std::vector<SGDStep>& steps);

}  // namespace ember
