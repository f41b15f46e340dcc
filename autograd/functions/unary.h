// Differentiable elementwise unary ops, one per row of EMBER_UNARY_OPS (forward math:
// tensor/ops/unary.h; gradients, one fused kernel each: tensor/ops/unary_backward.h). Each
// saves only the tensor its gradient reads (unary_grad_reads): the input, the output or nothing.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/unary.h"

namespace ember {

Variable unary(UnaryOp op, const Variable& x);

#define EMBER_UNARY_VARIABLE_FUNCTION(name) \
  inline Variable name(const Variable& x) { return unary(UnaryOp::name, x); }
EMBER_UNARY_OPS(EMBER_UNARY_VARIABLE_FUNCTION)
#undef EMBER_UNARY_VARIABLE_FUNCTION
inline Variable operator-(const Variable& x) { return neg(x); }

}  // namespace ember
