#include <Eigen/Core>
#include <algorithm>
#include <iterator>
#include <unsupported/Eigen/SpecialFunctions>

#include "tensor/cpu/loops.h"
#include "tensor/ops/unary_backward_kernels.h"
#include "tensor/ops/unary_math.h"

namespace ember::cpu {

namespace {

// The rules with an Eigen array form below; every other rule, layout and dtype takes the scalar
// UnaryRule loop. A rule earns a row here only when a benchmark shows the scalar loop slow.
constexpr UnaryOp kEigenForms[] = {UnaryOp::neg,  UnaryOp::exp,     UnaryOp::log,  UnaryOp::sqrt,
                                   UnaryOp::rsqrt, UnaryOp::abs,    UnaryOp::relu, UnaryOp::sigmoid,
                                   UnaryOp::tanh, UnaryOp::silu,    UnaryOp::gelu, UnaryOp::gelu_tanh};

// Contiguous f32/f64: the same rules as UnaryRule<Op>::df, as Eigen array expressions
// (vectorized exp/tanh/erf), chunked across threads. v is x or y (see unary_grad_reads).
template <class T>
bool backward_vectorized(UnaryOp op, const Tensor& dx, const Tensor& grad, const Tensor& v) {
  if (!dx.is_contiguous() || !grad.is_contiguous() || !v.is_contiguous()) return false;
  if (std::find(std::begin(kEigenForms), std::end(kEigenForms), op) == std::end(kEigenForms)) return false;
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T* pg = static_cast<const T*>(grad.data_ptr());
  const T* pv = static_cast<const T*>(v.data_ptr());
  T* pd = static_cast<T*>(dx.data_ptr());
  // The rules' temporaries (silu's s, gelu's cdf and pdf) are arrays of at most kBlock values on
  // the stack: a thread's whole chunk (megabytes) as a heap temporary cost a fresh allocation,
  // its page faults and an extra pass through memory per call (gelu's backward took 3.5× its
  // forward at ViT's MLP, 4160×768).
  constexpr int64_t kBlock = 2048;
  using Tmp = Eigen::Array<T, Eigen::Dynamic, 1, Eigen::ColMajor, kBlock, 1>;
  parallel_for(dx.numel(), 16384, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kBlock) {
      const int64_t e = std::min(end, b + kBlock);
      Eigen::Map<const Arr> g(pg + b, e - b), x(pv + b, e - b);
      Eigen::Map<Arr> d(pd + b, e - b);
      const T one(1), half(0.5), zero(0);
      switch (op) {
        case UnaryOp::neg: d = -g; break;
        case UnaryOp::exp: d = g * x; break;
        case UnaryOp::log: d = g / x; break;
        case UnaryOp::sqrt: d = g / (T(2) * x); break;
        case UnaryOp::rsqrt: d = T(-0.5) * g * x * x * x; break;
        case UnaryOp::abs: d = (x > zero).select(g, (x < zero).select(-g, zero)); break;
        case UnaryOp::relu: d = (x > zero).select(g, zero); break;
        case UnaryOp::sigmoid: d = g * x * (one - x); break;
        case UnaryOp::tanh: d = g * (one - x * x); break;
        case UnaryOp::silu: {
          Tmp s = x.logistic();
          d = g * s * (one + x * (one - s));
          break;
        }
        case UnaryOp::gelu: {
          d = g * (half * (one + (x * T(0.70710678118654752)).erf()) +
                   x * (T(-0.5) * x * x).exp() * T(0.39894228040143268));
          break;
        }
        case UnaryOp::gelu_tanh: {
          const T k = T(0.79788456080286536), c = T(0.044715);
          Tmp t = (k * (x + c * x * x * x)).tanh();
          Tmp dinner = k * (one + T(3) * c * x * x);
          d = g * (half * (one + t) + half * x * (one - t * t) * dinner);
          break;
        }
        default: break;  // not in kEigenForms
      }
    }
  });
  return true;
}

}  // namespace

// dx, grad, v: one shape (v is x or y, or grad itself for neg).
void unary_backward(UnaryOp op, const Tensor& dx, const Tensor& grad, const Tensor& v) {
  dispatch_all_float(grad.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
      if (backward_vectorized<T>(op, dx, grad, v)) return;
    dispatch_unary_op(op, [&](auto op_tag) {
      map2<T, T, T>(dx, grad, v, UnaryBackwardFunctor<decltype(op_tag)::value, T>{});
    });
  });
}

}  // namespace ember::cpu
