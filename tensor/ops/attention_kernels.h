// attention's kernels (attention_cpu.cpp, attention_cuda.cu), chosen by attention.cpp. They
// receive resolved arguments: scale ≠ 0; mask undefined, or expanded to (B, H, N, M) with
// dtype bool or the lse dtype (f64 for f64 inputs, else f32).
#pragma once
#include "tensor/ops/attention.h"

namespace ember::cpu {
AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale);
AttentionGrads attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& mask, double scale);
}  // namespace ember::cpu
namespace ember::cuda {
AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale);
AttentionGrads attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& mask, double scale);
}  // namespace ember::cuda
