// Softmax family over one dim of any tensor. Take a "row" to be the C elements x[..., :, ...]
// along `dim` with every other index fixed; each row is independent.
//
//   m            = max_c x_c                            (subtracted for numerical stability)
//   lse(x)       = m + log Σ_c exp(x_c - m)             logsumexp: x's shape without dim
//   softmax(x)_c = exp(x_c - lse) = exp(x_c - m) / Σ exp(x_c' - m)          y: x's shape
//   log_softmax(x)_c = x_c - lse                                            y: x's shape
//
// Gradients (g: the gradient of the output, same shape as it):
//   softmax:     dx_c = y_c · (g_c - Σ_c' g_c' y_c')       = softmax_backward(g, y, dim)
//   log_softmax: dx_c = g_c - exp(y_c) · Σ_c' g_c'          = log_softmax_backward(g, y, dim)
//   logsumexp:   dx_c = g · softmax(x)_c                    (autograd/functions/softmax.cpp)
//
// Inputs may have any strides; outputs are contiguous. -inf entries get probability exactly 0
// (attention masks); a row of only -inf has logsumexp -inf and softmax/log_softmax NaN (0/0);
// a NaN anywhere in a row makes the whole row NaN. log_softmax is computed as (x - m) - log Σ,
// which keeps the small log-probabilities of confident entries exact.
//
// CPU (f32, f64): rows along a unit-stride dim are processed one at a time in three vectorizable
// passes (max; exp and sum, double accumulation; scale); for a contiguous x and dim not last,
// a band of neighbouring rows is processed together so every pass reads memory in order.
// CUDA (f32, f64, bf16, f16; float accumulation, double for f64): a warp per row (C <= 1024) or
// a 256-thread block per row, each thread folding its elements into a running (max, sum) in one
// pass (online softmax), then shuffle/shared-memory reductions; when dim is strided and there
// are many rows, a thread per row instead, so neighbouring threads read neighbouring addresses.
#pragma once
#include "tensor/tensor.h"

namespace ember {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);

// grad and y: the output gradient and the forward's output, one shape; returns dx.
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim);
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim);

// What the kernels compute, per row.
enum class SoftmaxMode { softmax, log_softmax, logsumexp };

// What the CPU and CUDA kernels receive. Row r of operand k starts at
//   base_k(r) = Σ_j r_j · kept_strides[k][j]   (r_j: r's multi-index over kept_sizes)
// and its element c is at base_k(r) + c · dim_stride[k]. Operands: forward (x, y),
// backward (grad, y, dx). Kept dims that are contiguous in every operand are merged.
struct SoftmaxPlan {
  static constexpr int kMaxOperands = 3;
  int operands = 0;
  Shape kept_sizes;
  Shape kept_strides[kMaxOperands];
  int64_t dim_stride[kMaxOperands] = {0, 0, 0};
  int64_t rows = 1, C = 1;
  // Set when every operand is contiguous: rows are then (outer, inner) pairs, element
  // (o, c, i) at (o·C + c)·inner + i, and the CPU processes bands of inner rows together.
  bool contiguous = false;
  int64_t outer = 1, inner = 1;
};

}  // namespace ember
