#include "tensor/cpu/loops.h"
#include "tensor/ops/binary_functors.h"
#include "tensor/ops/binary_kernels.h"

namespace ember::cpu {

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_numeric(a.dtype(), binary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    dispatch_binary_op(op, [&](auto op_tag) {
      using F = BinaryFunctor<decltype(op_tag)::value, T>;
      map2<typename F::Out, T, T>(out, a, b, F{});
    });
  });
}

}  // namespace ember::cpu
