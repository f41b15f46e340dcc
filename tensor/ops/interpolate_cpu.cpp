// CPU bilinear interpolation: one task per (n, c) plane, with the row and column taps
// computed once per call. The math is in interpolate.h. Every tensor here is contiguous.
#include <algorithm>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/interpolate_kernels.h"

namespace ember::cpu {

namespace {

template <class T>
std::vector<BilinearTap<T>> taps(int64_t in, int64_t out, bool align_corners) {
  std::vector<BilinearTap<T>> t(out);
  for (int64_t o = 0; o < out; ++o) t[o] = bilinear_tap<T>(o, in, out, align_corners);
  return t;
}

// x (N·C, H, W) -> out (N·C, OH, OW)
template <class T>
void forward_impl(const T* x, T* out, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                  bool align_corners) {
  const auto rows = taps<T>(H, OH, align_corners), cols = taps<T>(W, OW, align_corners);
  parallel_for(planes, std::max<int64_t>(1, 8192 / std::max<int64_t>(OH * OW, 1)), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T* xp = x + p * H * W;
      T* op = out + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const BilinearTap<T> r = rows[oh];
        const T* x0 = xp + r.i0 * W;
        const T* x1 = xp + r.i1 * W;
        const T lh = r.lambda, lh0 = T(1) - lh;
        T* orow = op + oh * OW;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const BilinearTap<T> c = cols[ow];
          const T lw = c.lambda, lw0 = T(1) - lw;
          orow[ow] = lh0 * (lw0 * x0[c.i0] + lw * x0[c.i1]) + lh * (lw0 * x1[c.i0] + lw * x1[c.i1]);
        }
      }
    }
  });
}

// gout (N·C, OH, OW) -> dx (N·C, H, W): each output scatters its four weights.
template <class T>
void backward_impl(const T* gout, T* dx, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                   bool align_corners) {
  const auto rows = taps<T>(H, OH, align_corners), cols = taps<T>(W, OW, align_corners);
  parallel_for(planes, std::max<int64_t>(1, 8192 / std::max<int64_t>(OH * OW, 1)), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      T* dp = dx + p * H * W;
      std::fill(dp, dp + H * W, T(0));
      const T* gp = gout + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const BilinearTap<T> r = rows[oh];
        T* d0 = dp + r.i0 * W;
        T* d1 = dp + r.i1 * W;
        const T lh = r.lambda, lh0 = T(1) - lh;
        const T* grow = gp + oh * OW;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const BilinearTap<T> c = cols[ow];
          const T lw = c.lambda, lw0 = T(1) - lw, g = grow[ow];
          d0[c.i0] += lh0 * lw0 * g;
          d0[c.i1] += lh0 * lw * g;
          d1[c.i0] += lh * lw0 * g;
          d1[c.i1] += lh * lw * g;
        }
      }
    }
  });
}

}  // namespace

void interpolate_bilinear_forward(const Tensor& x, const Tensor& out, bool align_corners) {
  dispatch_float(x.dtype(), "interpolate_bilinear", [&](auto tag) {
    using T = decltype(tag);
    forward_impl<T>(x.data<T>(), out.data<T>(), x.size(0) * x.size(1), x.size(2), x.size(3), out.size(2), out.size(3),
                    align_corners);
  });
}

void interpolate_bilinear_backward(const Tensor& grad_out, const Tensor& grad_x, bool align_corners) {
  dispatch_float(grad_out.dtype(), "interpolate_bilinear_backward", [&](auto tag) {
    using T = decltype(tag);
    backward_impl<T>(grad_out.data<T>(), grad_x.data<T>(), grad_x.size(0) * grad_x.size(1), grad_x.size(2),
                     grad_x.size(3), grad_out.size(2), grad_out.size(3), align_corners);
  });
}

}  // namespace ember::cpu
