// Differentiable elementwise unary ops (forward math: tensor/ops/unary.h; gradients, one
// fused kernel each: tensor/ops/unary_backward.h). Each saves only the tensor its gradient
// reads: the input (log, abs, relu, silu, gelu, gelu_tanh), the output (exp, sqrt, rsqrt,
// sigmoid, tanh) or nothing (neg).
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/unary.h"

namespace ember {

Variable unary(UnaryOp op, const Variable& x);

inline Variable neg(const Variable& x) { return unary(UnaryOp::neg, x); }
inline Variable exp(const Variable& x) { return unary(UnaryOp::exp, x); }
inline Variable log(const Variable& x) { return unary(UnaryOp::log, x); }
inline Variable sqrt(const Variable& x) { return unary(UnaryOp::sqrt, x); }
inline Variable rsqrt(const Variable& x) { return unary(UnaryOp::rsqrt, x); }
inline Variable abs(const Variable& x) { return unary(UnaryOp::abs, x); }
inline Variable relu(const Variable& x) { return unary(UnaryOp::relu, x); }
inline Variable sigmoid(const Variable& x) { return unary(UnaryOp::sigmoid, x); }
inline Variable tanh(const Variable& x) { return unary(UnaryOp::tanh, x); }
inline Variable silu(const Variable& x) { return unary(UnaryOp::silu, x); }
inline Variable gelu(const Variable& x) { return unary(UnaryOp::gelu, x); }
inline Variable gelu_tanh(const Variable& x) { return unary(UnaryOp::gelu_tanh, x); }
inline Variable operator-(const Variable& x) { return neg(x); }

}  // namespace ember
