// Bilinear resize of (N, C, H, W) to (N, C, OH, OW), as PyTorch's
// F.interpolate(mode="bilinear") without scale factors or antialiasing.
//
// Source coordinate of output row oh (columns likewise with W, OW):
//   align_corners = true:   src = oh · (H − 1) / (OH − 1)          (src = 0 when OH = 1)
//   align_corners = false:  src = max((oh + 0.5) · H / OH − 0.5, 0)
//   h0 = min(⌊src⌋, H − 1),  h1 = min(h0 + 1, H − 1),  λh = src − h0,  and (OH = H) is the identity
// Forward:
//   out[n,c,oh,ow] = (1−λh)(1−λw)·x[h0,w0] + (1−λh)λw·x[h0,w1] + λh(1−λw)·x[h1,w0] + λhλw·x[h1,w1]
// Gradient (the transpose: each output scatters its four weights back):
//   ∂L/∂x[n,c,y,z] = Σ_{oh,ow} gout[n,c,oh,ow] · (weight of (y,z) in out[oh,ow] above)
// Coordinates and weights are computed in the accumulation type (f32 for f32 and 16-bit types,
// f64 for f64). FLOPs: ~8 per output element.
// CPU: f32, f64, parallel over planes, index/weight tables computed once per call; the backward
// scatters within a plane. CUDA: a thread per output element; the backward scatters with
// atomicAdd (16-bit types accumulate into an f32 buffer first).
#pragma once
#include "tensor/tensor.h"

namespace ember {

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);
Tensor interpolate_bilinear_backward(const Tensor& grad_out, const Shape& x_shape, bool align_corners = false);

// One output position's two source indices and the weight of the second (1 − λ goes to i0).
template <class A>
struct BilinearTap {
  int64_t i0, i1;
  A lambda;
};

// PyTorch's rule for output index o of `out` along an input axis of size `in`.
template <class A>
EMBER_HD BilinearTap<A> bilinear_tap(int64_t o, int64_t in, int64_t out, bool align_corners) {
  if (in == out) return {o, o, A(0)};
  A src;
  if (align_corners) {
    src = out > 1 ? static_cast<A>(o) * (static_cast<A>(in - 1) / static_cast<A>(out - 1)) : A(0);
  } else {
    src = (static_cast<A>(o) + A(0.5)) * (static_cast<A>(in) / static_cast<A>(out)) - A(0.5);
    if (src < A(0)) src = A(0);
  }
  int64_t i0 = static_cast<int64_t>(src);  // src >= 0, so truncation is floor
  if (i0 > in - 1) i0 = in - 1;
  A lambda = src - static_cast<A>(i0);
  if (lambda < A(0)) lambda = A(0);
  if (lambda > A(1)) lambda = A(1);
  return {i0, i0 < in - 1 ? i0 + 1 : i0, lambda};
}

}  // namespace ember
