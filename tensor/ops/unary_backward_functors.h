// The gradient rule of each UnaryOp (see unary_backward.h), once, for the CPU and CUDA loops.
// operator()(g, v): v is x or y as unary_grad_reads(Op) says (ignored for neg). Computes in
// acc_t<T> (float for bf16/f16).
#pragma once
#include <cmath>

#include "tensor/convert.h"
#include "tensor/ops/unary_backward.h"

namespace ember {

constexpr UnaryGradReads unary_grad_reads_of(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return UnaryGradReads::nothing;
    case UnaryOp::exp:
    case UnaryOp::sqrt:
    case UnaryOp::rsqrt:
    case UnaryOp::sigmoid:
    case UnaryOp::tanh: return UnaryGradReads::output;
    default: return UnaryGradReads::input;
  }
}

template <UnaryOp Op, class T>
struct UnaryBackwardFunctor {
  using A = acc_t<T>;
  EMBER_HD T operator()(T gv, T vv) const {
    using std::erf, std::exp, std::tanh;
    A g = static_cast<A>(gv), v = static_cast<A>(vv);
    if constexpr (Op == UnaryOp::neg) return convert<T>(-g);
    if constexpr (Op == UnaryOp::exp) return convert<T>(g * v);
    if constexpr (Op == UnaryOp::log) return convert<T>(g / v);
    if constexpr (Op == UnaryOp::sqrt) return convert<T>(g / (A(2) * v));
    if constexpr (Op == UnaryOp::rsqrt) return convert<T>(A(-0.5) * g * v * v * v);
    if constexpr (Op == UnaryOp::abs) return convert<T>(v > A(0) ? g : (v < A(0) ? -g : A(0)));
    if constexpr (Op == UnaryOp::relu) return convert<T>(v > A(0) ? g : A(0));
    if constexpr (Op == UnaryOp::sigmoid) return convert<T>(g * v * (A(1) - v));
    if constexpr (Op == UnaryOp::tanh) return convert<T>(g * (A(1) - v * v));
    if constexpr (Op == UnaryOp::silu) {
      A s = A(1) / (A(1) + exp(-v));
      return convert<T>(g * s * (A(1) + v * (A(1) - s)));
    }
    if constexpr (Op == UnaryOp::gelu) {
      A cdf = A(0.5) * (A(1) + erf(v * A(0.70710678118654752)));
      A pdf = A(0.39894228040143268) * exp(A(-0.5) * v * v);  // 1/√(2π)
      return convert<T>(g * (cdf + v * pdf));
    }
    if constexpr (Op == UnaryOp::gelu_tanh) {
      const A k = A(0.79788456080286536);  // √(2/π)
      A t = tanh(k * (v + A(0.044715) * v * v * v));
      A dinner = k * (A(1) + A(3 * 0.044715) * v * v);
      return convert<T>(g * (A(0.5) * (A(1) + t) + A(0.5) * v * (A(1) - t * t) * dinner));
    }
  }
};

}  // namespace ember
