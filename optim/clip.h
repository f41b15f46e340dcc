// Gradient norms and clipping over a set of parameters.
//
//   ‖g‖ = √(Σ_p Σ_i g_p,i²)     (one global L2 norm over every gradient, accumulated in double)
//   clip_grad_norm: when ‖g‖ > max_norm, every gradient is scaled in place by
//   max_norm / (‖g‖ + 1e-6) (PyTorch's torch.nn.utils.clip_grad_norm_ coefficient).
// Parameters without a gradient are skipped. A non-finite norm (inf / NaN gradients) leaves the
// gradients alone and is returned as is, so the caller can skip the step.
//
// The norm is one reduction over all the gradients (sum_of_squares, tensor/ops/grad_norm.h) and
// the scaling reads it where it lives, so the *_on_device forms make no host read: on CUDA a
// training step that clips does not wait for the GPU. grad_norm and clip_grad_norm read the
// norm back once (a host sync on CUDA). The gradients must be on one device.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace ember::optim {

// ‖g‖ as a 0-dim f64 tensor on the gradients' device (0 on the CPU when none has a gradient).
Tensor grad_norm_on_device(const std::vector<Variable>& params);
// Clips without reading anything back; returns the norm before clipping, as grad_norm_on_device.
Tensor clip_grad_norm_on_device(const std::vector<Variable>& params, double max_norm);

double grad_norm(const std::vector<Variable>& params);
// Returns the norm before clipping.
double clip_grad_norm(const std::vector<Variable>& params, double max_norm);

}  // namespace ember::optim
