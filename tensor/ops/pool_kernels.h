// The pools' kernels (pool_cpu.cpp, pool_cuda.cu), chosen by pool.cpp. They receive contiguous
// inputs and fresh contiguous results; indices are flat positions in each (H, W) plane.
#pragma once
#include "tensor/ops/pool.h"

namespace ember::cpu {
void max_pool2d_forward(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dGeometry& g);
void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_x, const Pool2dGeometry& g);
void avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g);
void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g);
void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g);
void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g);
}  // namespace ember::cpu
namespace ember::cuda {
void max_pool2d_forward(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dGeometry& g);
void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_x, const Pool2dGeometry& g);
void avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g);
void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g);
void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& out, const Pool2dGeometry& g);
void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_x, const Pool2dGeometry& g);
}  // namespace ember::cuda
