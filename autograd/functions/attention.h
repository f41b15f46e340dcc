// Differentiable scaled dot-product attention (forward math and gradients: tensor/ops/attention.h).
// The mask is a plain Tensor: it receives no gradient.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/attention.h"

namespace ember {

Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                      const Tensor& mask = Tensor(), double scale = 0);

// The same from one packed projection qkv (B, N, 3, H, d) (timm's qkv Linear output, reshaped):
// q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2] as (B, H, N, d) views -> (B, H, N, d).
// Its backward writes dq, dk, dv into one (B, N, 3, H, d) gradient, laid out as qkv is: composed
// from select ops instead, each of the three would be a zero-filled tensor of qkv's size with
// one part copied in, summed by the engine, then copied again to undo the permute (together 6%
// of a ViT-Ti training step on the CPU).
Variable scaled_dot_product_attention_qkv(const Variable& qkv, const Tensor& mask = Tensor(), double scale = 0);

}  // namespace ember
