// Differentiable clamp (forward math and gradient: tensor/ops/clamp.h).
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/clamp.h"

namespace ember {

// min(max(x, lo), hi); pass ±infinity for a one-sided clamp. dx = g · [lo <= x <= hi].
Variable clamp(const Variable& x, double lo, double hi);

}  // namespace ember
