// Layer normalization over the last dim.
//
//   x: (*, D), viewed as R = numel/D rows of D values; weight γ, bias β: (D) or undefined.
//
// Forward, per row r:
//   μ_r = Σ_j x_j / D,   σ²_r = Σ_j (x_j - μ_r)² / D,   s_r = 1/√(σ²_r + eps)   (rstd)
//   x̂_j = (x_j - μ_r)·s_r,   y_j = γ_j x̂_j + β_j
// mean and rstd (*) — x's shape without the last dim — are saved for the backward.
//
// Backward, with g = dL/dy and h_j = g_j γ_j:
//   dx_j = s_r · (h_j - mean_j(h) - x̂_j · mean_j(h·x̂))
//   dγ_j = Σ_r g_j x̂_j          dβ_j = Σ_r g_j
//
// CPU: parallel over rows; one fused pass for the statistics (shifted sums in double), one to
// write y; the backward accumulates dγ, dβ per thread and adds the partial sums at the end.
// CUDA: a warp per row (llm.c's layernorm kernels); dγ, dβ from per-chunk partial sums and a
// second small kernel, so the result does not depend on scheduling.
// dtypes: f32 and f64 everywhere; bf16 and f16 on CUDA, read and written in their own format with
// f32 arithmetic. mean, rstd, dweight and dbias are in the statistics dtype: x's for f32 and f64,
// f32 for bf16 and f16 (weight and bias are read in it too).
#pragma once
#include "tensor/tensor.h"

namespace ember {

struct LayerNormResult {
  Tensor out;   // x's shape
  Tensor mean;  // (*)
  Tensor rstd;  // (*)
};

struct LayerNormGrads {
  Tensor dx;       // x's shape
  Tensor dweight;  // (D)
  Tensor dbias;    // (D)
};

LayerNormResult layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// dweight and dbias are always computed (the autograd wrapper drops what is not needed).
LayerNormGrads layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& rstd);

// How many chunks of rows the CUDA backward sums dγ, dβ over: about 64 rows each, at most 256.
int64_t layer_norm_backward_chunks(int64_t rows);

}  // namespace ember
