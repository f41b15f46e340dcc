#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/clamp_functors.h"
#include "tensor/ops/clamp_kernels.h"

namespace ember::cuda {

// y, x: one shape; one thread an element.
void clamp(const Tensor& y, const Tensor& x, double lo, double hi) {
  void* stream = current_stream();
  dispatch_numeric(x.dtype(), "clamp", [&](auto tag) {
    using T = decltype(tag);
    launch_map<T, T>(y, x, make_clamp_functor<T>(lo, hi), stream);
  });
}

// dx, grad, x: one shape; one thread an element.
void clamp_backward(const Tensor& dx, const Tensor& grad, const Tensor& x, double lo, double hi) {
  void* stream = current_stream();
  dispatch_all_float(x.dtype(), "clamp_backward", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    launch_map2<T, T, T>(dx, grad, x, ClampBackwardFunctor<T>{static_cast<A>(lo), static_cast<A>(hi)}, stream);
  });
}

}  // namespace ember::cuda
