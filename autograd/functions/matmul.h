// Differentiable matmul and linear (forward math and gradients: tensor/ops/matmul.h).
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/matmul.h"

namespace ember {

Variable matmul(const Variable& a, const Variable& b);
// bias may be an undefined Variable (no bias).
Variable linear(const Variable& x, const Variable& w, const Variable& bias = Variable());

}  // namespace ember
