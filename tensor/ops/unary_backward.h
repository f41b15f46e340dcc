// The fused gradient of every UnaryOp: dx[i] = g[i] · f'(x[i]), one pass over memory, no
// temporaries. Each rule (UnaryRule<Op>::df in unary_math.h, its formula in unary.h's list)
// reads either the forward input x or the forward output y, whichever makes it cheapest, so
// autograd saves only that one; unary_grad_reads(op) says which.
//
// Shapes: grad, x, y and dx all share the forward's shape; grad may be any strided view
// (an expanded one included); dx is a new contiguous tensor of grad's dtype. The tensor a
// rule does not read may be undefined. Floating dtypes; bf16/f16 compute in float.
#pragma once
#include "tensor/ops/unary.h"

namespace ember {

enum class UnaryGradReads { nothing, input, output };
// Which saved tensor unary_backward(op, ...) reads.
UnaryGradReads unary_grad_reads(UnaryOp op);

Tensor unary_backward(UnaryOp op, const Tensor& grad, const Tensor& x, const Tensor& y);

}  // namespace ember
