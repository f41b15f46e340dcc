// clamp's kernels (clamp_cpu.cpp, clamp_cuda.cu), chosen by clamp.cpp.
#pragma once
#include "tensor/ops/clamp.h"

namespace ember::cpu {
void clamp(const Tensor& y, const Tensor& x, double lo, double hi);                          // y fresh
void clamp_backward(const Tensor& dx, const Tensor& grad, const Tensor& x, double lo, double hi);  // dx fresh
}  // namespace ember::cpu
namespace ember::cuda {
void clamp(const Tensor& y, const Tensor& x, double lo, double hi);
void clamp_backward(const Tensor& dx, const Tensor& grad, const Tensor& x, double lo, double hi);
}  // namespace ember::cuda
