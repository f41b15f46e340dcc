#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/unary_math.h"
#include "tensor/ops/unary_kernels.h"

namespace ember::cuda {

template <class T>
struct IntNeg {
  __device__ T operator()(T v) const { return static_cast<T>(-v); }
};
template <class T>
struct IntAbs {
  __device__ T operator()(T v) const { return static_cast<T>(std::is_signed_v<T> && v < T(0) ? -v : v); }
};

// out, x: one shape; one thread an element.
void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  void* stream = current_stream();
  dispatch_numeric(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      if (op == UnaryOp::neg) return launch_map<T, T>(out, x, IntNeg<T>{}, stream);
      return launch_map<T, T>(out, x, IntAbs<T>{}, stream);
    } else {
      dispatch_unary_op(op, [&](auto op_tag) {
        launch_map<T, T>(out, x, UnaryFunctor<decltype(op_tag)::value, T>{}, stream);
      });
    }
  });
}

}  // namespace ember::cuda
