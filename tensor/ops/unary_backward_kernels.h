// unary_backward's kernels (unary_backward_cpu.cpp, unary_backward_cuda.cu), chosen by unary_backward.cpp.
#pragma once
#include "tensor/ops/unary_backward.h"

namespace ember::cpu {
// dx = grad·f'(v), v the saved tensor the rule reads (x, y, or grad when it reads nothing).
void unary_backward(UnaryOp op, const Tensor& dx, const Tensor& grad, const Tensor& v);
}
namespace ember::cuda {
void unary_backward(UnaryOp op, const Tensor& dx, const Tensor& grad, const Tensor& v);
}
