// Differentiable batch norm (forward math and gradients: tensor/ops/batch_norm.h).
// weight and bias may be undefined Variables; the running stats are plain tensors, updated in
// place when training.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/batch_norm.h"

namespace ember {

// With a clamp, the activation that follows (ReLU, ReLU6) is fused in: clamp(batch_norm(x)).
Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor running_mean,
                    Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                    const BatchNormClamp& clamp = {});

}  // namespace ember
