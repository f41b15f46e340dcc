// softmax's kernels (softmax_cpu.cpp, softmax_cuda.cu), chosen by softmax.cpp; the rows they
// walk are described by SoftmaxPlan (softmax.h).
#pragma once
#include "tensor/ops/softmax.h"

namespace ember::cpu {
void softmax_forward(SoftmaxMode mode, const Tensor& x, const Tensor& out, const SoftmaxPlan& plan);
void softmax_backward(SoftmaxMode mode, const Tensor& grad, const Tensor& y, const Tensor& dx,
                      const SoftmaxPlan& plan);
}  // namespace ember::cpu
namespace ember::cuda {
void softmax_forward(SoftmaxMode mode, const Tensor& x, const Tensor& out, const SoftmaxPlan& plan);
void softmax_backward(SoftmaxMode mode, const Tensor& grad, const Tensor& y, const Tensor& dx,
                      const SoftmaxPlan& plan);
}  // namespace ember::cuda
