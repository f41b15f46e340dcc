// binary's kernels (binary_cpu.cpp, binary_cuda.cu), chosen by binary.cpp.
#pragma once
#include "tensor/ops/binary.h"

namespace ember::cpu {
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);  // a, b expanded to out
}
namespace ember::cuda {
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
}
