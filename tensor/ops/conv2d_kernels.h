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
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Conv2dGeometry& g);
void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Tensor& grad_x, const Conv2dGeometry& g);
void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_w, const Conv2dGeometry& g);
}  // namespace ember::cuda
