// CUDA conv2d: straightforward direct kernels (version 1), dense/grouped and depthwise.
// The math and shapes are in conv2d.h. Every tensor here is contiguous. 16-bit types load
// and store in their own format and accumulate in f32 (acc_t).
//   forward          one thread per output element, looping over its Cg·kh·kw taps
//   backward input   one thread per input element, gathering the outputs that read it
//                    (no atomics: each thread owns its element)
//   backward weight  one block per weight element, reducing over N·OH·OW in shared memory
//                    (serves dense and depthwise alike: depthwise is Cg = 1)
// A tuned implicit-GEMM version comes later; these are the reference the tuned ones are
// checked against.
#include <algorithm>

#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/conv2d_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;

unsigned grid_for(int64_t total) {
  return static_cast<unsigned>(std::min<int64_t>((total + kBlock - 1) / kBlock, int64_t{1} << 20));
}

// x (N, C, H, W), w (O, Cg, kh, kw), bias (O) or null, out (N, O, OH, OW)
template <class T>
__global__ void conv2d_forward_kernel(const T* x, const T* w, const T* bias, T* out, Conv2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.O * g.OH * g.OW;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, o = (idx / (g.OW * g.OH)) % g.O;
    const int64_t n = idx / (g.OW * g.OH * g.O), grp = o / g.Og;
    const T* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;  // (Cg, H, W)
    const T* wo = w + o * g.Cg * g.kh * g.kw;              // (Cg, kh, kw)
    A acc = bias ? static_cast<A>(bias[o]) : A(0);
    for (int64_t c = 0; c < g.Cg; ++c) {
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.sh - g.ph + i * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = ow * g.sw - g.pw + j * g.dw;
          if (iw < 0 || iw >= g.W) continue;
          acc += static_cast<A>(xg[(c * g.H + ih) * g.W + iw]) * static_cast<A>(wo[(c * g.kh + i) * g.kw + j]);
        }
      }
    }
    out[idx] = static_cast<T>(acc);
  }
}

// x (N, C, H, W), w (O, 1, kh, kw) with O = C·M, bias (O) or null, out (N, O, OH, OW)
template <class T>
__global__ void depthwise_conv2d_forward_kernel(const T* x, const T* w, const T* bias, T* out, Conv2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.O * g.OH * g.OW, M = g.O / g.C;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, o = (idx / (g.OW * g.OH)) % g.O;
    const int64_t n = idx / (g.OW * g.OH * g.O);
    const T* xp = x + (n * g.C + o / M) * g.H * g.W;  // (H, W)
    const T* wo = w + o * g.kh * g.kw;                // (kh, kw)
    A acc = bias ? static_cast<A>(bias[o]) : A(0);
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = ow * g.sw - g.pw + j * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        acc += static_cast<A>(xp[ih * g.W + iw]) * static_cast<A>(wo[i * g.kw + j]);
      }
    }
    out[idx] = static_cast<T>(acc);
  }
}

// The output position along one axis that reads input position y through tap i, or -1.
__device__ __forceinline__ int64_t source_output(int64_t y, int64_t i, int64_t stride, int64_t pad,
                                                 int64_t dilation, int64_t out_size) {
  const int64_t t = y + pad - i * dilation;
  if (t < 0 || t % stride != 0) return -1;
  const int64_t o = t / stride;
  return o < out_size ? o : -1;
}

// Every output channel o in [o_begin, o_end) reads input channel c as its channel cl.
// gout (N, O, OH, OW), w (O, Cg, kh, kw), dx (N, C, H, W)
template <class T>
__device__ __forceinline__ acc_t<T> gather_input_grad(const T* gout, const T* w, const Conv2dGeometry& g, int64_t n,
                                                      int64_t y, int64_t z, int64_t o_begin, int64_t o_end,
                                                      int64_t cl) {
  using A = acc_t<T>;
  A acc = 0;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t oh = source_output(y, i, g.sh, g.ph, g.dh, g.OH);
    if (oh < 0) continue;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t ow = source_output(z, j, g.sw, g.pw, g.dw, g.OW);
      if (ow < 0) continue;
      for (int64_t o = o_begin; o < o_end; ++o)
        acc += static_cast<A>(gout[((n * g.O + o) * g.OH + oh) * g.OW + ow]) *
               static_cast<A>(w[((o * g.Cg + cl) * g.kh + i) * g.kw + j]);
    }
  }
  return acc;
}

template <class T>
__global__ void conv2d_backward_input_kernel(const T* gout, const T* w, T* dx, Conv2dGeometry g) {
  const int64_t total = g.N * g.C * g.H * g.W;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t z = idx % g.W, y = (idx / g.W) % g.H, c = (idx / (g.W * g.H)) % g.C, n = idx / (g.W * g.H * g.C);
    const int64_t grp = c / g.Cg;
    dx[idx] = static_cast<T>(gather_input_grad(gout, w, g, n, y, z, grp * g.Og, (grp + 1) * g.Og, c % g.Cg));
  }
}

template <class T>
__global__ void depthwise_conv2d_backward_input_kernel(const T* gout, const T* w, T* dx, Conv2dGeometry g) {
  const int64_t total = g.N * g.C * g.H * g.W, M = g.O / g.C;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t z = idx % g.W, y = (idx / g.W) % g.H, c = (idx / (g.W * g.H)) % g.C, n = idx / (g.W * g.H * g.C);
    dx[idx] = static_cast<T>(gather_input_grad(gout, w, g, n, y, z, c * M, (c + 1) * M, 0));
  }
}

// One block per weight element (o, cl, i, j): dw = Σ_{n,oh,ow} gout · x, tree-reduced.
// gout (N, O, OH, OW), x (N, C, H, W), dw (O, Cg, kh, kw)
template <class T>
__global__ void conv2d_backward_weight_kernel(const T* gout, const T* x, T* dw, Conv2dGeometry g) {
  using A = acc_t<T>;
  __shared__ A partial[kBlock];
  const int64_t e = blockIdx.x;
  const int64_t j = e % g.kw, i = (e / g.kw) % g.kh, cl = (e / (g.kw * g.kh)) % g.Cg, o = e / (g.kw * g.kh * g.Cg);
  const int64_t c = (o / g.Og) * g.Cg + cl;
  const int64_t count = g.N * g.OH * g.OW;
  A acc = 0;
  for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
    const int64_t ow = r % g.OW, oh = (r / g.OW) % g.OH, n = r / (g.OW * g.OH);
    const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
    acc += static_cast<A>(gout[((n * g.O + o) * g.OH + oh) * g.OW + ow]) *
           static_cast<A>(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) dw[e] = static_cast<T>(partial[0]);
}

template <class T>
void launch_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g) {
  const int64_t total = out.numel();
  if (total == 0) return;
  cudaStream_t stream = stream_of(current_stream());
  const T* b = bias.defined() ? static_cast<const T*>(bias.data_ptr()) : nullptr;
  const T* px = static_cast<const T*>(x.data_ptr());
  const T* pw = static_cast<const T*>(w.data_ptr());
  T* po = static_cast<T*>(out.data_ptr());
  if (g.depthwise()) {
    depthwise_conv2d_forward_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(px, pw, b, po, g);
    EMBER_CUDA_CHECK_LAUNCH("depthwise_conv2d_forward_kernel");
  } else {
    conv2d_forward_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(px, pw, b, po, g);
    EMBER_CUDA_CHECK_LAUNCH("conv2d_forward_kernel");
  }
}

template <class T>
void launch_backward_input(const Tensor& gout, const Tensor& w, const Tensor& dx, const Conv2dGeometry& g) {
  const int64_t total = dx.numel();
  if (total == 0) return;
  cudaStream_t stream = stream_of(current_stream());
  const T* pg = static_cast<const T*>(gout.data_ptr());
  const T* pw = static_cast<const T*>(w.data_ptr());
  T* pdx = static_cast<T*>(dx.data_ptr());
  if (g.depthwise()) {
    depthwise_conv2d_backward_input_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(pg, pw, pdx, g);
    EMBER_CUDA_CHECK_LAUNCH("depthwise_conv2d_backward_input_kernel");
  } else {
    conv2d_backward_input_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(pg, pw, pdx, g);
    EMBER_CUDA_CHECK_LAUNCH("conv2d_backward_input_kernel");
  }
}

template <class T>
void launch_backward_weight(const Tensor& gout, const Tensor& x, const Tensor& dw, const Conv2dGeometry& g) {
  const int64_t blocks = dw.numel();
  if (blocks == 0) return;
  EMBER_CHECK(blocks < (int64_t{1} << 31), "conv2d_backward_weight (cuda): ", blocks, " weights is too many blocks");
  conv2d_backward_weight_kernel<T><<<static_cast<unsigned>(blocks), kBlock, 0, stream_of(current_stream())>>>(
      static_cast<const T*>(gout.data_ptr()), static_cast<const T*>(x.data_ptr()), static_cast<T*>(dw.data_ptr()), g);
  EMBER_CUDA_CHECK_LAUNCH("conv2d_backward_weight_kernel");
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g) {
  if (cudnn_conv2d(CudnnPass::forward, x, w, bias, out, g)) return;
  dispatch_all_float(x.dtype(), "conv2d", [&](auto tag) { launch_forward<decltype(tag)>(x, w, bias, out, g); });
}

void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Tensor& grad_x, const Conv2dGeometry& g) {
  if (cudnn_conv2d(CudnnPass::backward_input, grad_out, w, Tensor(), grad_x, g)) return;
  dispatch_all_float(w.dtype(), "conv2d_backward_input",
                     [&](auto tag) { launch_backward_input<decltype(tag)>(grad_out, w, grad_x, g); });
}

void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_w, const Conv2dGeometry& g) {
  if (cudnn_conv2d(CudnnPass::backward_weight, grad_out, x, Tensor(), grad_w, g)) return;
  dispatch_all_float(x.dtype(), "conv2d_backward_weight",
                     [&](auto tag) { launch_backward_weight<decltype(tag)>(grad_out, x, grad_w, g); });
}

}  // namespace ember::cuda
