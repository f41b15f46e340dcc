#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/where_kernels.h"

namespace ember::cuda {

template <class T>
struct WhereOp {
  __device__ T operator()(bool c, T x, T y) const { return c ? x : y; }
};

// out, cond, a, b: one shape (broadcast dims have stride 0); one thread an element.
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  void* stream = current_stream();
  dispatch_all(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    launch_map3<T, bool, T, T>(out, cond, a, b, WhereOp<T>{}, stream);
  });
}

}  // namespace ember::cuda
