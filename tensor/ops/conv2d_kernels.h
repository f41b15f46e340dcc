// conv2d's kernels (conv2d_cpu.cpp, conv2d_cuda.cu), chosen by conv2d.cpp. They receive
// contiguous x, w, grad_out and a fresh contiguous result.
#pragma once
#include "tensor/ops/conv2d.h"

namespace ember::cpu {
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g);
void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Tensor& grad_x, const Conv2dGeometry& g);
void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_w, const Conv2dGeometry& g);
}  // namespace ember::cpu
namespace ember::cuda {
// The cuDNN path (conv2d_cudnn.cu): runs the pass and returns true when EMBER_CONV and this
// conv choose cuDNN; false when the native kernels should run. `a`, `b` are the pass's
// operands: forward (x, w) -> out, backward_input (grad_out, w) -> grad_x, backward_weight
// (grad_out, x) -> grad_w; bias only for forward (undefined for none).
enum class CudnnPass { forward, backward_input, backward_weight };
bool cudnn_conv2d(CudnnPass pass, const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& result,
                  const Conv2dGeometry& g);
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g);
void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Tensor& grad_x, const Conv2dGeometry& g);
void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_w, const Conv2dGeometry& g);
}  // namespace ember::cuda
