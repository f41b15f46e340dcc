// Differentiable conv2d (forward math and gradients: tensor/ops/conv2d.h).
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/conv2d.h"

namespace ember {

// x (N, C, H, W), w (O, C/groups, kh, kw), bias (O) or an undefined Variable for none.
Variable conv2d(const Variable& x, const Variable& w, const Variable& bias, const Conv2dParams& p = {});

}  // namespace ember
