#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/unary_backward_kernels.h"
#include "tensor/ops/unary_math.h"

namespace ember::cuda {

// dx, grad, v: one shape (v is x or y, or grad itself for neg); one thread an element.
void unary_backward(UnaryOp op, const Tensor& dx, const Tensor& grad, const Tensor& v) {
  void* stream = current_stream();
  dispatch_all_float(grad.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    dispatch_unary_op(op, [&](auto op_tag) {
      launch_map2<T, T, T>(dx, grad, v, UnaryBackwardFunctor<decltype(op_tag)::value, T>{}, stream);
    });
  });
}

}  // namespace ember::cuda
