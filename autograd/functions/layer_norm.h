// Differentiable layer norm over the last dim (forward math and gradients: tensor/ops/layer_norm.h).
// weight and bias may be undefined Variables.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/layer_norm.h"

namespace ember {

Variable layer_norm(const Variable& x, const Variable& weight, const Variable& bias, double eps = 1e-5);

}  // namespace ember
