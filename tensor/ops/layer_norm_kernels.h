// layer_norm's kernels (layer_norm_cpu.cpp, layer_norm_cuda.cu), chosen by layer_norm.cpp.
// x is (rows, D) contiguous, weight and bias (D) or undefined, mean and rstd (rows); results fresh.
#pragma once
#include "tensor/ops/layer_norm.h"

namespace ember::cpu {
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                        const Tensor& mean, const Tensor& rstd, int64_t rows, int64_t D, double eps);
void layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         int64_t rows, int64_t D);
}  // namespace ember::cpu
namespace ember::cuda {
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                        const Tensor& mean, const Tensor& rstd, int64_t rows, int64_t D, double eps);
void layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         int64_t rows, int64_t D);
}  // namespace ember::cuda
