// The math of each UnaryOp, once, for the CPU and CUDA loops (computes in acc_t<T>).
#pragma once
#include <cmath>
#include <type_traits>

#include "tensor/convert.h"
#include "tensor/ops/unary.h"

namespace ember {

template <UnaryOp Op, class T>
struct UnaryFunctor {
  using A = acc_t<T>;
  EMBER_HD T operator()(T xv) const {
    using std::abs, std::erf, std::exp, std::log, std::sqrt, std::tanh;
    A x = static_cast<A>(xv);
    if constexpr (Op == UnaryOp::neg) return convert<T>(-x);
    if constexpr (Op == UnaryOp::exp) return convert<T>(exp(x));
    if constexpr (Op == UnaryOp::log) return convert<T>(log(x));
    if constexpr (Op == UnaryOp::sqrt) return convert<T>(sqrt(x));
    if constexpr (Op == UnaryOp::rsqrt) return convert<T>(A(1) / sqrt(x));
    if constexpr (Op == UnaryOp::abs) return convert<T>(x < A(0) ? -x : x);
    if constexpr (Op == UnaryOp::relu) return convert<T>(x > A(0) || x != x ? x : A(0));  // NaN propagates
    if constexpr (Op == UnaryOp::sigmoid) return convert<T>(A(1) / (A(1) + exp(-x)));
    if constexpr (Op == UnaryOp::tanh) return convert<T>(tanh(x));
    if constexpr (Op == UnaryOp::silu) return convert<T>(x / (A(1) + exp(-x)));
    if constexpr (Op == UnaryOp::gelu) return convert<T>(A(0.5) * x * (A(1) + erf(x * A(0.70710678118654752))));
    if constexpr (Op == UnaryOp::gelu_tanh) {
      A inner = A(0.79788456080286536) * (x + A(0.044715) * x * x * x);
      return convert<T>(A(0.5) * x * (A(1) + tanh(inner)));
    }
  }
};

template <class Fn>
void dispatch_unary_op(UnaryOp op, Fn&& fn) {
  switch (op) {
#define EMBER_CASE(o) \
  case UnaryOp::o: return fn(std::integral_constant<UnaryOp, UnaryOp::o>{});
    EMBER_CASE(neg) EMBER_CASE(exp) EMBER_CASE(log) EMBER_CASE(sqrt) EMBER_CASE(rsqrt) EMBER_CASE(abs)
    EMBER_CASE(relu) EMBER_CASE(sigmoid) EMBER_CASE(tanh) EMBER_CASE(silu) EMBER_CASE(gelu) EMBER_CASE(gelu_tanh)
#undef EMBER_CASE
  }
}

}  // namespace ember
