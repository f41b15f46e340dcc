// where's kernels (where_cpu.cpp, where_cuda.cu), chosen by where.cpp.
#pragma once
#include "tensor/ops/where.h"

namespace ember::cpu {
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);  // all expanded to out
}
namespace ember::cuda {
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}
