// The fused gradient of every UnaryOp: dx[i] = g[i] · f'(x[i]), one pass over memory, no
// temporaries. Each rule reads either the forward input x or the forward output y, whichever
// makes it cheapest (so autograd saves only that one):
//
//   op          dx                                         reads
//   neg         -g                                         -
//   exp         g·y                                        y = eˣ
//   log         g / x                                      x
//   sqrt        g / (2y)                                   y = √x
//   rsqrt       -½·g·y³                                    y = x^(-1/2)
//   abs         g·sign x            (0 at x = 0)           x
//   relu        g·[x > 0]                                  x
//   sigmoid     g·y(1 - y)                                 y = σ(x)
//   tanh        g·(1 - y²)                                 y = tanh x
//   silu        g·σ(x)(1 + x(1 - σ(x)))                    x
//   gelu        g·(Φ(x) + x·φ(x)),  φ(x) = e^(-x²/2)/√(2π) x
//   gelu_tanh   g·(½(1+t) + ½x(1-t²)·k(1+3·0.044715x²)),   x
//               t = tanh(k(x + 0.044715x³)), k = √(2/π)
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
