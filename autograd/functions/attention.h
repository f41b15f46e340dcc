// Differentiable scaled dot-product attention (forward math and gradients: tensor/ops/attention.h).
// The mask is a plain Tensor: it receives no gradient.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/attention.h"

namespace ember {

Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                      const Tensor& mask = Tensor(), double scale = 0);

}  // namespace ember
