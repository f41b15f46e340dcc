// Gradient norms and clipping over a set of parameters.
//
//   ‖g‖ = √(Σ_p Σ_i g_p,i²)     (one global L2 norm over every gradient, accumulated in double)
//   clip_grad_norm: when ‖g‖ > max_norm, every gradient is scaled in place by
//   max_norm / (‖g‖ + 1e-6) (PyTorch's torch.nn.utils.clip_grad_norm_ coefficient).
// Parameters without a gradient are skipped. A non-finite norm (inf / NaN gradients) is returned
// as is and the gradients are left alone, so the caller can skip the step.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace ember::optim {

double grad_norm(const std::vector<Variable>& params);
// Returns the norm before clipping.
double clip_grad_norm(const std::vector<Variable>& params, double max_norm);

}  // namespace ember::optim
