// CUDA pooling kernels (version 1: direct). Forward: one thread per output element.
// Backward: one thread per input element, gathering from the windows that contain it, so
// no atomics are needed. The math and shapes are in pool.h. Every tensor here is contiguous.
#include <algorithm>

#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/pool_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;

unsigned grid_for(int64_t total) {
  return static_cast<unsigned>(std::min<int64_t>((total + kBlock - 1) / kBlock, int64_t{1} << 20));
}

#define EMBER_GRID_STRIDE_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// The outputs [lo, hi) along one axis whose window (o·stride − pad + [0, k)) contains y.
__device__ __forceinline__ void windows_containing(int64_t y, int64_t k, int64_t stride, int64_t pad, int64_t out,
                                                   int64_t& lo, int64_t& hi) {
  // o·stride − pad <= y  and  y <= o·stride − pad + k − 1
  const int64_t t = y + pad - k + 1;
  lo = t <= 0 ? 0 : (t + stride - 1) / stride;
  hi = min((y + pad) / stride + 1, out);
}

// x (N·C, H, W) -> out, indices (N·C, OH, OW)
template <class T>
__global__ void max_pool2d_forward_kernel(const T* x, T* out, int64_t* indices, Pool2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.C * g.OH * g.OW;
  EMBER_GRID_STRIDE_LOOP(idx, total) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, p = idx / (g.OW * g.OH);
    const int64_t h0 = max(oh * g.sh - g.ph, int64_t(0)), h1 = min(oh * g.sh - g.ph + g.kh, g.H);
    const int64_t w0 = max(ow * g.sw - g.pw, int64_t(0)), w1 = min(ow * g.sw - g.pw + g.kw, g.W);
    const T* xp = x + p * g.H * g.W;
    A best = -INFINITY;
    int64_t arg = h0 * g.W + w0;
    bool found_nan = false;
    for (int64_t y = h0; y < h1 && !found_nan; ++y) {
      for (int64_t z = w0; z < w1; ++z) {
        const A v = static_cast<A>(xp[y * g.W + z]);
        if (v != v || v > best) {  // the first NaN wins at once, else the first max
          best = v;
          arg = y * g.W + z;
          if (v != v) {
            found_nan = true;
            break;
          }
        }
      }
    }
    out[idx] = static_cast<T>(best);
    indices[idx] = arg;
  }
}

// gout, indices (N·C, OH, OW) -> dx (N·C, H, W)
template <class T>
__global__ void max_pool2d_backward_kernel(const T* gout, const int64_t* indices, T* dx, Pool2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.C * g.H * g.W;
  EMBER_GRID_STRIDE_LOOP(idx, total) {
    const int64_t z = idx % g.W, y = (idx / g.W) % g.H, p = idx / (g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(y, g.kh, g.sh, g.ph, g.OH, oh0, oh1);
    windows_containing(z, g.kw, g.sw, g.pw, g.OW, ow0, ow1);
    const int64_t self = y * g.W + z, base = p * g.OH * g.OW;
    A acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        if (indices[base + oh * g.OW + ow] == self) acc += static_cast<A>(gout[base + oh * g.OW + ow]);
    dx[idx] = static_cast<T>(acc);
  }
}

// x (N·C, H, W) -> out (N·C, OH, OW); the divisor counts padding (kh·kw in floor mode).
template <class T>
__global__ void avg_pool2d_forward_kernel(const T* x, T* out, Pool2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.C * g.OH * g.OW;
  EMBER_GRID_STRIDE_LOOP(idx, total) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, p = idx / (g.OW * g.OH);
    const int64_t hs = oh * g.sh - g.ph, he = min(hs + g.kh, g.H + g.ph);
    const int64_t ws = ow * g.sw - g.pw, we = min(ws + g.kw, g.W + g.pw);
    const T* xp = x + p * g.H * g.W;
    A s = 0;
    for (int64_t y = max(hs, int64_t(0)); y < min(he, g.H); ++y)
      for (int64_t z = max(ws, int64_t(0)); z < min(we, g.W); ++z) s += static_cast<A>(xp[y * g.W + z]);
    out[idx] = static_cast<T>(s / static_cast<A>((he - hs) * (we - ws)));
  }
}

// gout (N·C, OH, OW) -> dx (N·C, H, W)
template <class T>
__global__ void avg_pool2d_backward_kernel(const T* gout, T* dx, Pool2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.C * g.H * g.W;
  EMBER_GRID_STRIDE_LOOP(idx, total) {
    const int64_t z = idx % g.W, y = (idx / g.W) % g.H, p = idx / (g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(y, g.kh, g.sh, g.ph, g.OH, oh0, oh1);
    windows_containing(z, g.kw, g.sw, g.pw, g.OW, ow0, ow1);
    const T* gp = gout + p * g.OH * g.OW;
    A acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t hs = oh * g.sh - g.ph, he = min(hs + g.kh, g.H + g.ph);
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t ws = ow * g.sw - g.pw, we = min(ws + g.kw, g.W + g.pw);
        acc += static_cast<A>(gp[oh * g.OW + ow]) / static_cast<A>((he - hs) * (we - ws));
      }
    }
    dx[idx] = static_cast<T>(acc);
  }
}

// x (N·C, H, W) -> out (N·C, OH, OW)
template <class T>
__global__ void adaptive_avg_pool2d_forward_kernel(const T* x, T* out, Pool2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.C * g.OH * g.OW;
  EMBER_GRID_STRIDE_LOOP(idx, total) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, p = idx / (g.OW * g.OH);
    const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
    const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
    const T* xp = x + p * g.H * g.W;
    A s = 0;
    for (int64_t y = h0; y < h1; ++y)
      for (int64_t z = w0; z < w1; ++z) s += static_cast<A>(xp[y * g.W + z]);
    out[idx] = static_cast<T>(s / static_cast<A>((h1 - h0) * (w1 - w0)));
  }
}

// gout (N·C, OH, OW) -> dx (N·C, H, W). Output window o contains input y exactly when
// o ∈ [⌊y·OH/H⌋, ⌈(y+1)·OH/H⌉) (the adaptive windows' own formula with in and out swapped).
template <class T>
__global__ void adaptive_avg_pool2d_backward_kernel(const T* gout, T* dx, Pool2dGeometry g) {
  using A = acc_t<T>;
  const int64_t total = g.N * g.C * g.H * g.W;
  EMBER_GRID_STRIDE_LOOP(idx, total) {
    const int64_t z = idx % g.W, y = (idx / g.W) % g.H, p = idx / (g.W * g.H);
    const T* gp = gout + p * g.OH * g.OW;
    A acc = 0;
    for (int64_t oh = adaptive_start(y, g.OH, g.H); oh < adaptive_end(y, g.OH, g.H); ++oh) {
      const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
      for (int64_t ow = adaptive_start(z, g.OW, g.W); ow < adaptive_end(z, g.OW, g.W); ++ow) {
        const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
        acc += static_cast<A>(gp[oh * g.OW + ow]) / static_cast<A>((h1 - h0) * (w1 - w0));
      }
    }
    dx[idx] = static_cast<T>(acc);
  }
}

template <class T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}
template <class T>
T* mptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

}  // namespace

// Each launcher: nothing to do for an empty result, else one grid-stride launch, checked.
#define EMBER_POOL_LAUNCH(kernel, total, ...)                                                           \
  do {                                                                                                  \
    if ((total) == 0) return;                                                                           \
    kernel<T><<<grid_for(total), kBlock, 0, stream_of(current_stream())>>>(__VA_ARGS__);                \
    EMBER_CUDA_CHECK_LAUNCH(#kernel);                                                                   \
  } while (0)

void max_pool2d_forward(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dGeometry& g) {
  dispatch_all_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    EMBER_POOL_LAUNCH(max_pool2d_forward_kernel, out.numel(), cptr<T>(x), mptr<T>(out), mptr<int64_t>(indices), g);
  });
}

void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_x, const Pool2dGeometry& g) {
  dispatch_all_float(grad_out.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    EMBER_POOL_LAUNCH(max_pool2d_backward_kernel, grad_x.numel(), cptr<T>(grad_out), cptr<int64_t>(indices),
                      mptr<T>(grad_x), g);
  });
}

void avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g) {
  dispatch_all_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    EMBER_POOL_LAUNCH(avg_pool2d_forward_kernel, out.numel(), cptr<T>(x), mptr<T>(out), g);
  });
}

void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g) {
  dispatch_all_float(grad_out.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    EMBER_POOL_LAUNCH(avg_pool2d_backward_kernel, grad_x.numel(), cptr<T>(grad_out), mptr<T>(grad_x), g);
  });
}

void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g) {
  dispatch_all_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    EMBER_POOL_LAUNCH(adaptive_avg_pool2d_forward_kernel, out.numel(), cptr<T>(x), mptr<T>(out), g);
  });
}

void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g) {
  dispatch_all_float(grad_out.dtype(), "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    EMBER_POOL_LAUNCH(adaptive_avg_pool2d_backward_kernel, grad_x.numel(), cptr<T>(grad_out), mptr<T>(grad_x), g);
  });
}

}  // namespace ember::cuda
