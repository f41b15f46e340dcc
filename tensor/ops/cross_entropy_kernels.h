// cross_entropy's kernels (cross_entropy_cpu.cpp, cross_entropy_cuda.cu), chosen by cross_entropy.cpp.
#pragma once
#include "tensor/ops/cross_entropy.h"

namespace ember::cpu {
// row_loss, lse: (N,) contiguous, accumulation dtype. Returns the first row whose class id is out
// of range (computing nothing), or -1.
int64_t cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const Tensor& row_loss, const Tensor& lse);
// scale: (N,) g_n in the accumulation dtype (any stride); dx: (N, C) contiguous.
void cross_entropy_backward(const Tensor& scale, const Tensor& logits, const Tensor& target, const Tensor& lse,
                            double label_smoothing, const Tensor& dx);
}  // namespace ember::cpu
namespace ember::cuda {
int64_t cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const Tensor& row_loss, const Tensor& lse);
void cross_entropy_backward(const Tensor& scale, const Tensor& logits, const Tensor& target, const Tensor& lse,
                            double label_smoothing, const Tensor& dx);
}  // namespace ember::cuda
