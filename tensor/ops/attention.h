// Scaled dot-product attention, fused: the (N × M) score matrix is never kept.
//
//   q (B, H, N, d), k (B, H, M, d), v (B, H, M, dv), mask broadcastable to (B, H, N, M):
//     S   = s · q·kᵀ + mask'        (B, H, N, M)   s = scale, or 1/√d when scale is 0
//           mask' = mask (additive float), or 0 where a bool mask is true and −∞ where false
//     P   = softmax over the last dim of S
//     out = P · v                   (B, H, N, dv)
//     lse = log Σ_j exp S_ij        (B, H, N)      kept for the backward
//   Gradients (g = dL/dout):
//     dv  = Pᵀ · g                  (B, H, M, dv)
//     dP  = g · vᵀ,  D_i = Σ_c g_ic · out_ic  (= Σ_j P_ij dP_ij)
//     dS  = P ∘ (dP − D)            (each row minus its D)
//     dq  = s · dS · k              (B, H, N, d)
//     dk  = s · dSᵀ · q             (B, H, M, d)
//   with P recomputed from q, k and lse as exp(S − lse). A row whose keys are all masked
//   out gives out = 0, lse = −∞ and no gradient. (On the CPU a masked key in a partly masked
//   row gets weight ~1e-38 rather than 0 in f32: the vectorized exp clamps −∞.)
//
// CPU (f32, f64): flash-style. Each (batch·head, block of query rows) walks the keys in
// blocks with an online softmax (running max and sum, rescaling the partial output), the
// score tile living in a small buffer; small Eigen GEMMs do the tile products. The backward
// recomputes P tile by tile from lse; it runs over (batch·head) when there are enough of
// them for the threads, else over key blocks (dk, dv) and then query blocks (dq).
// CUDA (f32, f64, bf16, f16; 16-bit inputs computed in f32): composed from the CUDA matmul
// and row-softmax kernels, materializing S (a tuned fused kernel can replace it).
#pragma once
#include "tensor/tensor.h"

namespace ember {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = Tensor(),
                                    double scale = 0);

struct AttentionForward {
  Tensor out;  // (B, H, N, dv), q's dtype
  Tensor lse;  // (B, H, N), f64 for f64 inputs, else f32
};
AttentionForward attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = Tensor(),
                                   double scale = 0);

struct AttentionGrads {
  Tensor dq, dk, dv;
};
AttentionGrads attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, const Tensor& mask = Tensor(),
                                  double scale = 0);

}  // namespace ember
