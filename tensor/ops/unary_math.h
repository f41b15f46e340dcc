// The scalar math of every UnaryOp (one rule per row of EMBER_UNARY_OPS in unary.h), written
// once for the CPU and CUDA loops, forward and gradient side by side:
//
//   UnaryRule<Op>::f(x)        the forward y = f(x)
//   UnaryRule<Op>::df(g, v)    the gradient dx = g·f'(x), from v = x or v = y as `reads` says
//                              (whichever is cheaper; autograd then saves only that tensor)
//   UnaryRule<Op>::reads       UnaryGradReads::input (x), output (y) or nothing (v is g itself)
//
// Both compute in A = acc_t<T>: float for f32/bf16/f16, double for f64. UnaryFunctor and
// UnaryBackwardFunctor wrap a rule for the elementwise loops; dispatch_unary_op turns a runtime
// UnaryOp into a compile-time one so every loop is instantiated per op.
#pragma once
#include <cmath>
#include <type_traits>

#include "tensor/convert.h"
#include "tensor/ops/unary.h"
#include "tensor/ops/unary_backward.h"

namespace ember {

namespace unary_rules {

// Unqualified exp/log/... below are <cmath>'s float and double overloads (CUDA provides them
// on the device), not ember's Tensor functions of the same names.
using std::erf;
using std::exp;
using std::log;
using std::log1p;
using std::sqrt;
using std::tanh;

template <UnaryOp Op>
struct UnaryRule;  // one specialization per op; a missing one fails to compile

using R = UnaryGradReads;

template <>
struct UnaryRule<UnaryOp::identity> {
  static constexpr R reads = R::nothing;
  template <class A> EMBER_HD static A f(A x) { return x; }
  template <class A> EMBER_HD static A df(A g, A) { return g; }
};

template <>
struct UnaryRule<UnaryOp::neg> {
  static constexpr R reads = R::nothing;
  template <class A> EMBER_HD static A f(A x) { return -x; }
  template <class A> EMBER_HD static A df(A g, A) { return -g; }
};

template <>
struct UnaryRule<UnaryOp::exp> {
  static constexpr R reads = R::output;  // dx = g·y
  template <class A> EMBER_HD static A f(A x) { return exp(x); }
  template <class A> EMBER_HD static A df(A g, A y) { return g * y; }
};

template <>
struct UnaryRule<UnaryOp::log> {
  static constexpr R reads = R::input;  // dx = g / x
  template <class A> EMBER_HD static A f(A x) { return log(x); }
  template <class A> EMBER_HD static A df(A g, A x) { return g / x; }
};

template <>
struct UnaryRule<UnaryOp::sqrt> {
  static constexpr R reads = R::output;  // dx = g / (2y)
  template <class A> EMBER_HD static A f(A x) { return sqrt(x); }
  template <class A> EMBER_HD static A df(A g, A y) { return g / (A(2) * y); }
};

template <>
struct UnaryRule<UnaryOp::rsqrt> {
  static constexpr R reads = R::output;  // dx = -½·g·y³
  template <class A> EMBER_HD static A f(A x) { return A(1) / sqrt(x); }
  template <class A> EMBER_HD static A df(A g, A y) { return A(-0.5) * g * y * y * y; }
};

template <>
struct UnaryRule<UnaryOp::abs> {
  static constexpr R reads = R::input;  // dx = g·sign x, 0 at x = 0
  template <class A> EMBER_HD static A f(A x) { return x < A(0) ? -x : x; }
  template <class A> EMBER_HD static A df(A g, A x) { return x > A(0) ? g : (x < A(0) ? -g : A(0)); }
};

template <>
struct UnaryRule<UnaryOp::relu> {
  static constexpr R reads = R::input;  // dx = g·[x > 0]
  template <class A> EMBER_HD static A f(A x) { return x > A(0) || x != x ? x : A(0); }  // NaN propagates
  template <class A> EMBER_HD static A df(A g, A x) { return x > A(0) ? g : A(0); }
};

template <>
struct UnaryRule<UnaryOp::relu6> {
  static constexpr R reads = R::input;  // dx = g·[0 <= x <= 6], g passing at the bounds as clamp's does
  template <class A> EMBER_HD static A f(A x) { return x < A(0) ? A(0) : (x > A(6) ? A(6) : x); }  // NaN fails both
  template <class A> EMBER_HD static A df(A g, A x) { return x >= A(0) && x <= A(6) ? g : A(0); }
};

template <>
struct UnaryRule<UnaryOp::sigmoid> {
  static constexpr R reads = R::output;  // dx = g·y(1 - y)
  template <class A> EMBER_HD static A f(A x) { return A(1) / (A(1) + exp(-x)); }
  template <class A> EMBER_HD static A df(A g, A y) { return g * y * (A(1) - y); }
};

template <>
struct UnaryRule<UnaryOp::tanh> {
  static constexpr R reads = R::output;  // dx = g·(1 - y²)
  template <class A> EMBER_HD static A f(A x) { return tanh(x); }
  template <class A> EMBER_HD static A df(A g, A y) { return g * (A(1) - y * y); }
};

template <>
struct UnaryRule<UnaryOp::silu> {
  static constexpr R reads = R::input;  // dx = g·σ(x)(1 + x(1 - σ(x)))
  template <class A> EMBER_HD static A f(A x) { return x / (A(1) + exp(-x)); }
  template <class A> EMBER_HD static A df(A g, A x) {
    A s = A(1) / (A(1) + exp(-x));
    return g * s * (A(1) + x * (A(1) - s));
  }
};

template <>
struct UnaryRule<UnaryOp::gelu> {
  static constexpr R reads = R::input;  // dx = g·(Φ(x) + x·φ(x)), φ(x) = e^(-x²/2)/√(2π)
  template <class A> EMBER_HD static A f(A x) { return A(0.5) * x * (A(1) + erf(x * A(0.70710678118654752))); }
  template <class A> EMBER_HD static A df(A g, A x) {
    A cdf = A(0.5) * (A(1) + erf(x * A(0.70710678118654752)));
    A pdf = A(0.39894228040143268) * exp(A(-0.5) * x * x);  // 1/√(2π)
    return g * (cdf + x * pdf);
  }
};

template <>
struct UnaryRule<UnaryOp::gelu_tanh> {
  // dx = g·(½(1+t) + ½x(1-t²)·k(1+3·0.044715x²)),  t = tanh(k(x + 0.044715x³)), k = √(2/π)
  static constexpr R reads = R::input;
  template <class A> EMBER_HD static A f(A x) {
    A inner = A(0.79788456080286536) * (x + A(0.044715) * x * x * x);
    return A(0.5) * x * (A(1) + tanh(inner));
  }
  template <class A> EMBER_HD static A df(A g, A x) {
    const A k = A(0.79788456080286536);  // √(2/π)
    A t = tanh(k * (x + A(0.044715) * x * x * x));
    A dinner = k * (A(1) + A(3 * 0.044715) * x * x);
    return g * (A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * dinner);
  }
};

template <>
struct UnaryRule<UnaryOp::softplus> {
  static constexpr R reads = R::input;  // dx = g·σ(x)
  // max(x, 0) + ln(1 + e^(-|x|)): no overflow for large x, full precision for very negative x
  template <class A> EMBER_HD static A f(A x) { return (x > A(0) ? x : A(0)) + log1p(exp(x > A(0) ? -x : x)); }
  template <class A> EMBER_HD static A df(A g, A x) { return g / (A(1) + exp(-x)); }
};

}  // namespace unary_rules

using unary_rules::UnaryRule;

// y = f(x) in acc_t<T>, stored as T.
template <UnaryOp Op, class T>
struct UnaryFunctor {
  EMBER_HD T operator()(T x) const { return convert<T>(UnaryRule<Op>::f(static_cast<acc_t<T>>(x))); }
};

// dx = g·f'(x) from v (x, y or g, as UnaryRule<Op>::reads says), in acc_t<T>.
template <UnaryOp Op, class T>
struct UnaryBackwardFunctor {
  EMBER_HD T operator()(T g, T v) const {
    using A = acc_t<T>;
    return convert<T>(UnaryRule<Op>::df(static_cast<A>(g), static_cast<A>(v)));
  }
};

constexpr UnaryGradReads unary_grad_reads_of(UnaryOp op) {
  switch (op) {
#define EMBER_UNARY_READS(name) \
  case UnaryOp::name: return UnaryRule<UnaryOp::name>::reads;
    EMBER_UNARY_OPS(EMBER_UNARY_READS)
#undef EMBER_UNARY_READS
  }
  return UnaryGradReads::input;
}

// Calls fn(std::integral_constant<UnaryOp, op>{}).
template <class Fn>
void dispatch_unary_op(UnaryOp op, Fn&& fn) {
  switch (op) {
#define EMBER_UNARY_CASE(name) \
  case UnaryOp::name: return fn(std::integral_constant<UnaryOp, UnaryOp::name>{});
    EMBER_UNARY_OPS(EMBER_UNARY_CASE)
#undef EMBER_UNARY_CASE
  }
}

}  // namespace ember
