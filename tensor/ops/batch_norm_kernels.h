// batch_norm's kernels (batch_norm_cpu.cpp, batch_norm_cuda.cu), chosen by batch_norm.cpp.
// Tensors as BatchNormArgs says (batch_norm.h); the results are fresh.
#pragma once
#include "tensor/ops/batch_norm.h"

namespace ember::cpu {
void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                        const Tensor& running_var, const Tensor& out, const Tensor& save_mean,
                        const Tensor& save_invstd, const BatchNormArgs& args);
void batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, const BatchNormArgs& args);
}  // namespace ember::cpu
namespace ember::cuda {
void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                        const Tensor& running_var, const Tensor& out, const Tensor& save_mean,
                        const Tensor& save_invstd, const BatchNormArgs& args);
void batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, const BatchNormArgs& args);
}  // namespace ember::cuda
