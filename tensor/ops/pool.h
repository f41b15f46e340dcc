// 2-D pooling over (N, C, H, W): max, average, adaptive average. Each (n, c) plane is pooled
// on its own; out is (N, C, OH, OW).
//
// Windowed pools (kernel kh×kw, stride sh×sw, zero padding ph×pw, PyTorch's floor mode):
//   OH = ⌊(H + 2·ph − kh) / sh⌋ + 1,  window(oh) rows = oh·sh − ph + [0, kh)   (OW likewise)
//   max_pool2d: out[n,c,oh,ow] = max of x over window ∩ input (padding never wins; NaN does)
//               indices[n,c,oh,ow] = y·W + z of that max within its plane (i64), the first on ties
//               ∂L/∂x[n,c,y,z] = Σ_{oh,ow : indices[n,c,oh,ow] = y·W + z} gout[n,c,oh,ow]
//   avg_pool2d: out = Σ_{window ∩ input} x / (kh·kw)   (padding counts in the divisor, PyTorch's
//               default count_include_pad=true)
//               ∂L/∂x[n,c,y,z] = Σ_{windows containing (y,z)} gout / (kh·kw)
// Adaptive average pool to OH×OW (PyTorch's windows, which cover every input row):
//   rows(oh) = [⌊oh·H/OH⌋, ⌈(oh+1)·H/OH⌉),  cols(ow) likewise,  out = mean of x over the window
//   ∂L/∂x[n,c,y,z] = Σ_{windows containing (y,z)} gout / |window|
// Padding may be at most half the kernel (so that every window holds an input element).
// FLOPs: one per window element read. CPU: f32, f64, parallel over planes; backward scatters
// within a plane. CUDA: a thread per output (forward) or per input element (backward,
// gathering the windows that contain it: no atomics); f32, f64, bf16, f16.
#pragma once
#include "tensor/tensor.h"

namespace ember {

// A pair (h, w) for kernel, stride and padding; an integer means the same for both.
struct Size2d {
  int64_t h = 0, w = 0;
  Size2d(int64_t v) : h(v), w(v) {}  // NOLINT: implicit, so max_pool2d(x, 3, 2, 1) reads naturally
  Size2d(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

struct MaxPoolResult {
  Tensor out;      // (N, C, OH, OW)
  Tensor indices;  // (N, C, OH, OW) i64: y·W + z within the plane
};

MaxPoolResult max_pool2d_with_indices(const Tensor& x, Size2d kernel, Size2d stride, Size2d padding = 0);
Tensor max_pool2d(const Tensor& x, Size2d kernel, Size2d stride, Size2d padding = 0);
inline Tensor max_pool2d(const Tensor& x, Size2d kernel) { return max_pool2d(x, kernel, kernel, 0); }
Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Shape& x_shape);

Tensor avg_pool2d(const Tensor& x, Size2d kernel, Size2d stride, Size2d padding = 0);
inline Tensor avg_pool2d(const Tensor& x, Size2d kernel) { return avg_pool2d(x, kernel, kernel, 0); }
Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape, Size2d kernel, Size2d stride,
                           Size2d padding = 0);

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape);

// What the kernels receive (for the adaptive pool only N, C, H, W, OH, OW are used).
struct Pool2dGeometry {
  int64_t N, C, H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw;
};

// PyTorch's adaptive window [start, end) along one axis.
EMBER_HD int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
EMBER_HD int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

}  // namespace ember
