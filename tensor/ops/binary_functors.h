// The math of each BinaryOp, once, for the CPU and CUDA loops. T is the storage type; the
// arithmetic runs in acc_t<T> (float for bf16/f16).
#pragma once
#include <cmath>
#include <type_traits>

#include "tensor/convert.h"
#include "tensor/ops/binary.h"

namespace ember {

template <BinaryOp Op, class T>
struct BinaryFunctor {
  using A = acc_t<T>;
  static constexpr bool kCompare = binary_op_compares(Op);
  using Out = std::conditional_t<kCompare, bool, T>;
  EMBER_HD Out operator()(T x, T y) const {
    A a = static_cast<A>(x), b = static_cast<A>(y);
    if constexpr (Op == BinaryOp::add) return convert<T>(a + b);
    if constexpr (Op == BinaryOp::sub) return convert<T>(a - b);
    if constexpr (Op == BinaryOp::mul) return convert<T>(a * b);
    if constexpr (Op == BinaryOp::div) return convert<T>(a / b);
    if constexpr (Op == BinaryOp::pow) {
      if constexpr (std::is_same_v<A, float>) return convert<T>(powf(a, b));
      else return convert<T>(::pow(static_cast<double>(a), static_cast<double>(b)));
    }
    if constexpr (Op == BinaryOp::maximum) return convert<T>(a >= b || a != a ? a : b);  // NaN propagates
    if constexpr (Op == BinaryOp::minimum) return convert<T>(a <= b || a != a ? a : b);
    if constexpr (Op == BinaryOp::eq) return a == b;
    if constexpr (Op == BinaryOp::ne) return a != b;
    if constexpr (Op == BinaryOp::lt) return a < b;
    if constexpr (Op == BinaryOp::le) return a <= b;
    if constexpr (Op == BinaryOp::gt) return a > b;
    if constexpr (Op == BinaryOp::ge) return a >= b;
  }
};

// Calls fn(std::integral_constant<BinaryOp, op>{}) so kernels are instantiated per op.
template <class Fn>
void dispatch_binary_op(BinaryOp op, Fn&& fn) {
  switch (op) {
#define EMBER_BINARY_CASE(name, kind) \
  case BinaryOp::name: return fn(std::integral_constant<BinaryOp, BinaryOp::name>{});
    EMBER_BINARY_OPS(EMBER_BINARY_CASE)
#undef EMBER_BINARY_CASE
  }
}

}  // namespace ember
