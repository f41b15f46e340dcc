#include <Eigen/Core>
#include <algorithm>
#include <iterator>
#include <limits>
#include <unsupported/Eigen/SpecialFunctions>

#include "tensor/cpu/loops.h"
#include "tensor/ops/unary_kernels.h"
#include "tensor/ops/unary_math.h"

namespace ember::cpu {

namespace {

// The ops with an Eigen array form below. Every other op, and every other layout and dtype,
// takes the scalar UnaryRule loop; both compute the same formulas (tests compare each with a
// float64 reference). An op earns a row here only when a benchmark shows the scalar loop slow.
constexpr UnaryOp kEigenForms[] = {UnaryOp::neg,  UnaryOp::exp,     UnaryOp::log,  UnaryOp::sqrt,
                                   UnaryOp::rsqrt, UnaryOp::abs,    UnaryOp::relu, UnaryOp::sigmoid,
                                   UnaryOp::tanh, UnaryOp::silu,    UnaryOp::gelu, UnaryOp::gelu_tanh};

// Contiguous f32/f64: Eigen's vectorized exp/tanh/erf/logistic (8 floats per AVX2 op) over
// chunks split across threads.
template <class T>
bool unary_vectorized(UnaryOp op, const Tensor& out, const Tensor& x) {
  if (!out.is_contiguous() || !x.is_contiguous()) return false;
  if (std::find(std::begin(kEigenForms), std::end(kEigenForms), op) == std::end(kEigenForms)) return false;
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T* px = static_cast<const T*>(x.data_ptr());
  T* po = static_cast<T*>(out.data_ptr());
  parallel_for(x.numel(), 16384, [&](int64_t b, int64_t e) {
    Eigen::Map<const Arr> a(px + b, e - b);
    Eigen::Map<Arr> o(po + b, e - b);
    const T half(0.5), one(1);
    switch (op) {
      case UnaryOp::neg: o = -a; break;
      case UnaryOp::exp:  // Eigen clamps very negative inputs; exp(-inf) must still be exactly 0
        o = (a == -std::numeric_limits<T>::infinity()).select(T(0), a.exp());
        break;
      case UnaryOp::log: o = a.log(); break;
      case UnaryOp::sqrt: o = a.sqrt(); break;
      case UnaryOp::rsqrt: o = a.rsqrt(); break;
      case UnaryOp::abs: o = a.abs(); break;
      case UnaryOp::relu: o = (a > T(0) || a != a).select(a, T(0)); break;  // NaN propagates
      case UnaryOp::sigmoid: o = a.logistic(); break;
      case UnaryOp::tanh: o = a.tanh(); break;
      case UnaryOp::silu: o = a * a.logistic(); break;
      case UnaryOp::gelu: o = half * a * (one + (a * T(0.70710678118654752)).erf()); break;
      case UnaryOp::gelu_tanh:
        o = half * a * (one + (T(0.79788456080286536) * (a + T(0.044715) * a * a * a)).tanh());
        break;
      default: break;  // not in kEigenForms
    }
  });
  return true;
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  dispatch_numeric(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      if (op == UnaryOp::neg) return map<T, T>(out, x, [](T v) { return static_cast<T>(-v); });
      return map<T, T>(out, x, [](T v) { return static_cast<T>(std::is_signed_v<T> && v < T(0) ? -v : v); });
    } else {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
        if (unary_vectorized<T>(op, out, x)) return;
      dispatch_unary_op(op, [&](auto op_tag) { map<T, T>(out, x, UnaryFunctor<decltype(op_tag)::value, T>{}); });
    }
  });
}

}  // namespace ember::cpu
