#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/binary_functors.h"
#include "tensor/ops/binary_kernels.h"

namespace ember::cuda {

// out, a, b: one shape (a, b expanded; broadcast dims have stride 0). One thread an element,
// grid-stride; contiguous operands skip the index arithmetic.
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  void* stream = current_stream();
  dispatch_numeric(a.dtype(), binary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    dispatch_binary_op(op, [&](auto op_tag) {
      using F = BinaryFunctor<decltype(op_tag)::value, T>;
      launch_map2<typename F::Out, T, T>(out, a, b, F{}, stream);
    });
  });
}

}  // namespace ember::cuda
