// CUDA bilinear interpolation (version 1: direct). Forward: one thread per output element.
// Backward: one thread per output element scattering its four weighted gradients with
// atomicAdd; 16-bit types scatter into an f32 buffer that is converted at the end.
// The math is in interpolate.h. Every tensor here is contiguous.
#include <algorithm>
#include <type_traits>

#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/copy.h"
#include "tensor/ops/interpolate_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;

unsigned grid_for(int64_t total) {
  return static_cast<unsigned>(std::min<int64_t>((total + kBlock - 1) / kBlock, int64_t{1} << 20));
}

struct ResizeShape {
  int64_t planes, H, W, OH, OW;  // x (planes, H, W), out (planes, OH, OW)
  bool align_corners;
};

// x (planes, H, W) -> out (planes, OH, OW)
template <class T>
__global__ void interpolate_bilinear_forward_kernel(const T* x, T* out, ResizeShape s) {
  using A = acc_t<T>;
  const int64_t total = s.planes * s.OH * s.OW;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = idx % s.OW, oh = (idx / s.OW) % s.OH, p = idx / (s.OW * s.OH);
    const BilinearTap<A> r = bilinear_tap<A>(oh, s.H, s.OH, s.align_corners);
    const BilinearTap<A> c = bilinear_tap<A>(ow, s.W, s.OW, s.align_corners);
    const T* x0 = x + (p * s.H + r.i0) * s.W;
    const T* x1 = x + (p * s.H + r.i1) * s.W;
    const A lh = r.lambda, lh0 = A(1) - lh, lw = c.lambda, lw0 = A(1) - lw;
    const A v = lh0 * (lw0 * static_cast<A>(x0[c.i0]) + lw * static_cast<A>(x0[c.i1])) +
                lh * (lw0 * static_cast<A>(x1[c.i0]) + lw * static_cast<A>(x1[c.i1]));
    out[idx] = static_cast<T>(v);
  }
}

// gout (planes, OH, OW) -> dx (planes, H, W) in D (f32 or f64), zeroed beforehand.
template <class T, class D>
__global__ void interpolate_bilinear_backward_kernel(const T* gout, D* dx, ResizeShape s) {
  const int64_t total = s.planes * s.OH * s.OW;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = idx % s.OW, oh = (idx / s.OW) % s.OH, p = idx / (s.OW * s.OH);
    const BilinearTap<D> r = bilinear_tap<D>(oh, s.H, s.OH, s.align_corners);
    const BilinearTap<D> c = bilinear_tap<D>(ow, s.W, s.OW, s.align_corners);
    const D g = static_cast<D>(gout[idx]);
    const D lh = r.lambda, lh0 = D(1) - lh, lw = c.lambda, lw0 = D(1) - lw;
    D* d0 = dx + (p * s.H + r.i0) * s.W;
    D* d1 = dx + (p * s.H + r.i1) * s.W;
    atomicAdd(d0 + c.i0, lh0 * lw0 * g);
    atomicAdd(d0 + c.i1, lh0 * lw * g);
    atomicAdd(d1 + c.i0, lh * lw0 * g);
    atomicAdd(d1 + c.i1, lh * lw * g);
  }
}

template <class T>
void launch_forward(const Tensor& x, const Tensor& out, const ResizeShape& s) {
  const int64_t total = out.numel();
  if (total == 0) return;
  interpolate_bilinear_forward_kernel<T><<<grid_for(total), kBlock, 0, stream_of(current_stream())>>>(
      static_cast<const T*>(x.data_ptr()), static_cast<T*>(out.data_ptr()), s);
  EMBER_CUDA_CHECK_LAUNCH("interpolate_bilinear_forward_kernel");
}

template <class T>
void launch_backward(const Tensor& grad_out, const Tensor& grad_x, const ResizeShape& s) {
  using D = acc_t<T>;  // the type atomicAdd accumulates in
  constexpr bool direct = std::is_same_v<D, T>;
  Tensor acc = direct ? grad_x : empty(grad_x.shape(), dtype_of<D>(), grad_x.device());
  cudaStream_t stream = stream_of(current_stream());
  EMBER_CUDA_CHECK(cudaMemsetAsync(acc.data_ptr(), 0, acc.nbytes(), stream));
  const int64_t total = grad_out.numel();
  if (total > 0) {
    interpolate_bilinear_backward_kernel<T, D><<<grid_for(total), kBlock, 0, stream>>>(
        static_cast<const T*>(grad_out.data_ptr()), static_cast<D*>(acc.data_ptr()), s);
    EMBER_CUDA_CHECK_LAUNCH("interpolate_bilinear_backward_kernel");
  }
  if (!direct) copy_into(grad_x, acc);
}

ResizeShape resize_shape(const Tensor& x, const Tensor& out, bool align_corners) {
  return {x.size(0) * x.size(1), x.size(2), x.size(3), out.size(2), out.size(3),
          align_corners};
}

}  // namespace

void interpolate_bilinear_forward(const Tensor& x, const Tensor& out, bool align_corners) {
  ResizeShape s = resize_shape(x, out, align_corners);
  dispatch_all_float(x.dtype(), "interpolate_bilinear", [&](auto tag) { launch_forward<decltype(tag)>(x, out, s); });
}

void interpolate_bilinear_backward(const Tensor& grad_out, const Tensor& grad_x, bool align_corners) {
  ResizeShape s = resize_shape(grad_x, grad_out, align_corners);
  dispatch_all_float(grad_out.dtype(), "interpolate_bilinear_backward",
                     [&](auto tag) { launch_backward<decltype(tag)>(grad_out, grad_x, s); });
}

}  // namespace ember::cuda
