// matmul's kernels (matmul_cpu.cpp, matmul_cuda.cu), chosen by matmul.cpp.
#pragma once
#include "tensor/ops/matmul.h"

namespace ember::cpu {
// out = a·b (+ bias) for every product of the plan (matmul.h); out contiguous, bias contiguous or undefined.
void gemm(const GemmPlan& plan, const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias);
}
namespace ember::cuda {
void gemm(const GemmPlan& plan, const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias);
}
