#include "tensor/cpu/loops.h"
#include "tensor/ops/clamp_functors.h"
#include "tensor/ops/clamp_kernels.h"

namespace ember::cpu {

// y, x: one shape.
void clamp(const Tensor& y, const Tensor& x, double lo, double hi) {
  dispatch_numeric(x.dtype(), "clamp", [&](auto tag) {
    using T = decltype(tag);
    map<T, T>(y, x, make_clamp_functor<T>(lo, hi));
  });
}

// dx, grad, x: one shape.
void clamp_backward(const Tensor& dx, const Tensor& grad, const Tensor& x, double lo, double hi) {
  dispatch_all_float(x.dtype(), "clamp_backward", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    map2<T, T, T>(dx, grad, x, ClampBackwardFunctor<T>{static_cast<A>(lo), static_cast<A>(hi)});
  });
}

}  // namespace ember::cpu
