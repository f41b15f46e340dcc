// 2-D convolution (cross-correlation, as in every DL framework), dense, grouped and depthwise.
//
// Shapes: x (N, C, H, W), w (O, C/G, kh, kw), bias (O) or undefined, out (N, O, OH, OW), with
//   G = groups, Cg = C/G input and Og = O/G output channels per group (g(o) = o / Og),
//   OH = ⌊(H + 2·ph + eh − dh·(kh−1) − 1) / sh⌋ + 1   (OW likewise with pw, ew, dw, kw, sw),
// where eh (ew) ≥ 0 extra zero rows (columns) pad the bottom (right) only: TensorFlow's "SAME"
// padding of a stride-2 conv puts its odd pixel there (timm's tf_* models), with no copy.
// Forward (x is 0 outside [0, H) × [0, W), i.e. zero padding):
//   out[n, o, oh, ow] = bias[o] + Σ_{c<Cg} Σ_{i<kh} Σ_{j<kw}
//                       x[n, g(o)·Cg + c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] · w[o, c, i, j]
// Gradients, with gout = ∂L/∂out (N, O, OH, OW):
//   ∂L/∂x[n, g·Cg + c, y, z] = Σ_{o in group g} Σ_{i,j,oh,ow : y = oh·sh − ph + i·dh, z = ow·sw − pw + j·dw}
//                              gout[n, o, oh, ow] · w[o, c, i, j]               (a transposed conv)
//   ∂L/∂w[o, c, i, j]       = Σ_{n,oh,ow} gout[n, o, oh, ow] · x[n, g(o)·Cg + c, oh·sh − ph + i·dh, ow·sw − pw + j·dw]
//   ∂L/∂bias[o]             = Σ_{n,oh,ow} gout[n, o, oh, ow]
// FLOPs of each of the three: 2·N·O·OH·OW·Cg·kh·kw.
//
// Depthwise is the case G = C > 1 (so Cg = 1) with O = C·M, M the channel multiplier:
// output channel o reads input channel o / M only.
//
// CPU: dense/grouped convs lower to GEMMs per sample and group (Eigen):
//   forward          out_g (Og, OH·OW)   = w_g (Og, Cg·kh·kw) · col (Cg·kh·kw, OH·OW),  col = im2col(x_g)
//   backward input   dcol               = w_gᵀ · gout_g, then col2im (scatter-add) into dx_g
//   backward weight  dw_g (Og, Cg·kh·kw) += gout_g · colᵀ, summed over the batch
// A 1×1 conv with stride 1 and no padding needs no im2col: col is x_g itself.
// Samples run in parallel (one GEMM per thread) when the batch fills the threads; otherwise
// Eigen parallelizes each GEMM. Depthwise convs have their own direct kernels, parallel over
// (N, C) planes (over O for the weight gradient): the padded input plane is split into its
// stride phases so that each tap is one contiguous, vectorized loop over the whole plane
// (conv2d_cpu.cpp explains the layout). CPU: f32 and f64.
// CUDA: direct kernels (one thread per output / input element; one block per weight element
// for the weight gradient), depthwise ones beside the dense ones; f32, f64, bf16, f16
// (16-bit types accumulate in f32). Or cuDNN, chosen by EMBER_CONV=auto|native|cudnn or
// set_conv_backend (conv2d_cudnn.cu):
//   auto (default)  cuDNN when libcudnn can be loaded (TF32 allowed for f32 unless EMBER_TF32=0,
//                   see allow_tf32 in matmul.h; tensor cores for bf16/f16), else the native
//                   kernels, with a one-time notice on stderr
//   native          the direct kernels above, the readable references
//   cudnn           cuDNN with full f32 math (CUDNN_FMA_MATH, and no FFT or Winograd algorithm,
//                   whose f32 error is several times a direct sum's); an error when libcudnn is
//                   absent. Also what auto does for f32 when TF32 is off (EMBER_TF32=0)
// cuDNN is opened with dlopen on first use (tensor/cuda/cudnn_library.h), never linked, so
// ember's programs start without it. Algorithms come from cudnnGet*Algorithm_v7 (heuristics,
// no trial runs), cached per shape with their descriptors. Grouped and depthwise convs go to
// cuDNN as group counts; a conv with extra bottom/right padding (which cuDNN's descriptors
// cannot express) or more than 2^31 - 1 elements in a tensor runs on the native kernels.
#pragma once
#include "tensor/tensor.h"

namespace ember {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  int64_t extra_pad_h = 0, extra_pad_w = 0;  // more zero rows at the bottom, columns at the right

  // The same stride, padding and dilation along both axes.
  static Conv2dParams square(int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1) {
    return Conv2dParams{stride, stride, padding, padding, dilation, dilation, groups};
  }
};

// out = conv2d(x, w) + bias; pass an undefined Tensor for no bias.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p = {});
// ∂L/∂x (x_shape) from ∂L/∂out.
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
// ∂L/∂w (w_shape) from ∂L/∂out. (∂L/∂bias is sum(grad_out, {0, 2, 3}).)
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& w_shape, const Conv2dParams& p);

// (N, O, OH, OW) for these shapes; throws naming conv2d when they do not fit together.
Shape conv2d_output_shape(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p);

// Everything a kernel needs, in one flat struct (sizes of x, w and out; the params).
struct Conv2dGeometry {
  int64_t N, C, H, W;    // x
  int64_t O, kh, kw;     // w: (O, Cg, kh, kw)
  int64_t OH, OW;        // out
  int64_t groups, Cg, Og;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t eh, ew;        // the extra bottom / right padding
  int64_t Hp() const { return H + 2 * ph + eh; }  // the padded input
  int64_t Wp() const { return W + 2 * pw + ew; }
  bool depthwise() const { return groups == C && groups > 1; }  // Cg = 1, O = C·multiplier
  int64_t multiplier() const { return O / C; }                  // depthwise only
  double flops() const { return 2.0 * N * O * OH * OW * Cg * kh * kw; }
};
Conv2dGeometry conv2d_geometry(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p);

// ---- CUDA implementation choice (process-wide; read from the environment on first use) ----
enum class ConvBackend { automatic, native, cudnn };  // named "auto", "native", "cudnn"
const char* conv_backend_name(ConvBackend backend);
ConvBackend parse_conv_backend(const char* value);  // nullptr or "" -> automatic; else throws naming EMBER_CONV
ConvBackend conv_backend();                         // EMBER_CONV, default auto
void set_conv_backend(ConvBackend backend);

}  // namespace ember
