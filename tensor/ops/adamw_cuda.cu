#include "tensor/cuda/check.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/adamw_kernels.h"

namespace ember::cuda {

// w, g, m, v: (n) contiguous; one thread an element, grid-stride. The scalars arrive in the
// parameter's type so a float update does float arithmetic only.
template <class T>
struct AdamWScalars {
  T one_minus_beta1, beta2, one_minus_beta2, eps, decay, l2, step_size, bc2_sqrt;
};

template <class T>
__global__ void adamw_update_kernel(T* __restrict__ w, const T* __restrict__ g, T* __restrict__ m,
                                    T* __restrict__ v, int64_t n, AdamWScalars<T> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T wi = w[i];
    const T gi = g[i] + s.l2 * wi;
    const T mi = m[i] + s.one_minus_beta1 * (gi - m[i]);
    const T vi = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T denom = sqrt(vi) / s.bc2_sqrt + s.eps;
    w[i] = wi * s.decay - s.step_size * mi / denom;
  }
}

template <class T>
static void launch_adamw(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                         const AdamWCoefficients& c, void* stream) {
  AdamWScalars<T> s{T(c.one_minus_beta1), T(c.beta2),        T(c.one_minus_beta2), T(c.eps),
                    T(c.decay_factor),    T(c.l2),           T(c.step_size),       T(c.bias_correction2_sqrt)};
  const int64_t n = param.numel();
  adamw_update_kernel<T><<<grid_for(n, 256), 256, 0, stream_of(stream)>>>(
      param.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(), n, s);
  EMBER_CUDA_CHECK_LAUNCH("adamw_update_kernel");
}

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWCoefficients& c) {
  void* stream = current_stream();
  if (param.dtype() == DType::f32) return launch_adamw<float>(param, grad, exp_avg, exp_avg_sq, c, stream);
  if (param.dtype() == DType::f64) return launch_adamw<double>(param, grad, exp_avg, exp_avg_sq, c, stream);
  throw make_error("adamw_update: dtype ", dtype_name(param.dtype()), " not supported on CUDA (expected f32 or f64)");
}

}  // namespace ember::cuda
