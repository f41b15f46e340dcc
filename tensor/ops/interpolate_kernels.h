// interpolate's kernels (interpolate_cpu.cpp, interpolate_cuda.cu), chosen by interpolate.cpp.
// They receive a contiguous input and a fresh contiguous result.
#pragma once
#include "tensor/ops/interpolate.h"

namespace ember::cpu {
void interpolate_bilinear_forward(const Tensor& x, const Tensor& out, bool align_corners);
void interpolate_bilinear_backward(const Tensor& grad_out, const Tensor& grad_x, bool align_corners);
}  // namespace ember::cpu
namespace ember::cuda {
void interpolate_bilinear_forward(const Tensor& x, const Tensor& out, bool align_corners);
void interpolate_bilinear_backward(const Tensor& grad_out, const Tensor& grad_x, bool align_corners);
}  // namespace ember::cuda
