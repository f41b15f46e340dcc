#include "tensor/cuda/check.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/sgd_kernels.h"

namespace ember::cuda {

template <class T>
struct SGDScalars {
  T lr, wd, mu, keep;
  bool use_momentum, nesterov, first_step;
};

// w, g, b: (n) contiguous (b unused without momentum); one thread an element, grid-stride.
template <class T>
__global__ void sgd_update_kernel(T* __restrict__ w, const T* __restrict__ g, T* __restrict__ b, int64_t n,
                                  SGDScalars<T> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T d = g[i] + s.wd * w[i];
    if (s.use_momentum) {
      const T bi = s.first_step ? d : s.mu * b[i] + s.keep * d;
      b[i] = bi;
      d = s.nesterov ? d + s.mu * bi : bi;
    }
    w[i] = w[i] - s.lr * d;
  }
}

template <class T>
static void launch_sgd(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& st,
                       void* stream) {
  SGDScalars<T> s{T(st.lr), T(st.weight_decay), T(st.momentum), T(1.0 - st.dampening),
                  st.momentum != 0.0, st.nesterov, st.first_step};
  T* b = s.use_momentum ? momentum_buffer.data<T>() : nullptr;
  const int64_t n = param.numel();
  sgd_update_kernel<T><<<grid_for(n, 256), 256, 0, stream_of(stream)>>>(param.data<T>(), grad.data<T>(), b, n, s);
  EMBER_CUDA_CHECK_LAUNCH("sgd_update_kernel");
}

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s) {
  void* stream = current_stream();
  if (param.dtype() == DType::f32) return launch_sgd<float>(param, grad, momentum_buffer, s, stream);
  if (param.dtype() == DType::f64) return launch_sgd<double>(param, grad, momentum_buffer, s, stream);
  throw make_error("sgd_update: dtype ", dtype_name(param.dtype()), " not supported on CUDA (expected f32 or f64)");
}

}  // namespace ember::cuda
