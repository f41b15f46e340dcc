// Elementwise unary ops: out[i] = f(x[i]).
//
//   op          f(x)                                   f'(x)
//   neg         -x                                     -1
//   exp         eˣ                                     eˣ
//   log         ln x                                   1/x
//   sqrt        √x                                     1/(2√x)
//   rsqrt       1/√x                                   -½ x^(-3/2)
//   abs         |x|                                    sign x
//   relu        max(x, 0)                              [x > 0]
//   sigmoid     σ(x) = 1/(1+e⁻ˣ)                       σ(1-σ)
//   tanh        tanh x                                 1 - tanh²x
//   silu        x·σ(x)                                 σ(1 + x(1-σ))
//   gelu        x·Φ(x) = ½x(1+erf(x/√2))               Φ(x) + x·φ(x)
//   gelu_tanh   ½x(1+tanh(√(2/π)(x+0.044715x³)))       derivative of that form
#pragma once
#include "tensor/tensor.h"

namespace ember {

enum class UnaryOp { neg, exp, log, sqrt, rsqrt, abs, relu, sigmoid, tanh, silu, gelu, gelu_tanh };
const char* unary_op_name(UnaryOp op);

Tensor unary(UnaryOp op, const Tensor& x);

inline Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
inline Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
inline Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
inline Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
inline Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
inline Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
inline Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
inline Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x); }
inline Tensor gelu_tanh(const Tensor& x) { return unary(UnaryOp::gelu_tanh, x); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace ember
