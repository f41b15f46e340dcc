#include "tensor/cpu/loops.h"
#include "tensor/ops/unary_backward_functors.h"
#include "tensor/ops/unary_functors.h"

namespace ember::cpu {

// dx, grad, v: one shape (v is x or y, or grad itself for neg).
void unary_backward(UnaryOp op, const Tensor& dx, const Tensor& grad, const Tensor& v) {
  dispatch_all_float(grad.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    dispatch_unary_op(op, [&](auto op_tag) {
      map2<T, T, T>(dx, grad, v, UnaryBackwardFunctor<decltype(op_tag)::value, T>{});
    });
  });
}

}  // namespace ember::cpu
