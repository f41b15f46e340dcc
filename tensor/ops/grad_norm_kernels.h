// sum_of_squares' and clip_by_norm_'s kernels (grad_norm_cpu.cpp, grad_norm_cuda.cu), chosen by
// grad_norm.cpp. The tensors are contiguous, non-empty, floating and on one device.
#pragma once
#include "tensor/ops/grad_norm.h"

namespace ember::cpu {
// out: 0-dim f64 on the CPU.
void sum_of_squares(const std::vector<Tensor>& tensors, const Tensor& out);
void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& sum_sq, double max_norm);
}  // namespace ember::cpu
namespace ember::cuda {
void sum_of_squares(const std::vector<Tensor>& tensors, const Tensor& out);
void clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& sum_sq, double max_norm);
}  // namespace ember::cuda
