// Differentiable bilinear interpolation (forward math and gradient: tensor/ops/interpolate.h).
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/interpolate.h"

namespace ember {

Variable interpolate_bilinear(const Variable& x, int64_t out_h, int64_t out_w, bool align_corners = false);

}  // namespace ember
