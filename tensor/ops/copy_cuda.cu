#include "tensor/convert.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/copy_kernels.h"

// Note: nvcc does not allow a __device__ lambda inside a generic (auto) lambda, so the
// dispatch lambdas below call named functors / templates instead.
namespace ember::cuda {

template <class To, class From>
struct ConvertOp {
  __device__ To operator()(From v) const { return convert<To>(v); }
};
template <class T>
struct ConstantOp {
  T v;
  __device__ T operator()(T) const { return v; }
};

void copy_strided(const Tensor& dst, const Tensor& src) {
  void* stream = current_stream();
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToDevice,
                                     stream_of(stream)));
    return;
  }
  dispatch_all(dst.dtype(), "copy", [&](auto to_tag) {
    using To = decltype(to_tag);
    dispatch_all(src.dtype(), "copy", [&](auto from_tag) {
      using From = decltype(from_tag);
      launch_map<To, From>(dst, src, ConvertOp<To, From>{}, stream);
    });
  });
}

void fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    launch_map<T, T>(dst, dst, ConstantOp<T>{convert<T>(value)}, current_stream());
  });
}

}  // namespace ember::cuda
