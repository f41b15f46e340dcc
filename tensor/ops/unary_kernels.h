// unary's kernels (unary_cpu.cpp, unary_cuda.cu), chosen by unary.cpp.
#pragma once
#include "tensor/ops/unary.h"

namespace ember::cpu {
void unary(UnaryOp op, const Tensor& out, const Tensor& x);  // out = f(x); x any strides, out fresh
}
namespace ember::cuda {
void unary(UnaryOp op, const Tensor& out, const Tensor& x);
}
