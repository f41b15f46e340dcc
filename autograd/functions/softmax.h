// Differentiable softmax family (forward math and gradients: tensor/ops/softmax.h).
//   softmax(x, dim)              dx = y (g - Σ g y)          (saves y)
//   log_softmax(x, dim)          dx = g - exp(y) Σ g         (saves y)
//   logsumexp(x, dim, keepdim)   dx = g · exp(x - lse)       (saves x and lse)
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/softmax.h"

namespace ember {

Variable softmax(const Variable& x, int64_t dim);
Variable log_softmax(const Variable& x, int64_t dim);
Variable logsumexp(const Variable& x, int64_t dim, bool keepdim = false);

}  // namespace ember
