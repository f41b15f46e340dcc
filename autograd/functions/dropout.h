// Differentiable dropout and drop path (forward math and gradients: tensor/ops/dropout.h).
// When nothing is dropped (not training, or p = 0) they return x itself.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/dropout.h"

namespace ember {

Variable dropout(const Variable& x, double p, bool training, Generator* gen = nullptr);
Variable drop_path(const Variable& x, double p, bool training, Generator* gen = nullptr);

}  // namespace ember
