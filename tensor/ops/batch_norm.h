// Batch normalization over the batch and spatial dims, per channel.
//
//   x: (N, C) or (N, C, *) — viewed as (N, C, L), L = the product of the trailing dims;
//   M = N·L values per channel. weight γ, bias β: (C) or undefined (γ = 1, β = 0).
//
// Forward (training): per channel c
//   μ_c = Σ x / M,   σ²_c = Σ (x - μ_c)² / M          (biased: the batch is the population)
//   x̂ = (x - μ_c) · r_c,  r_c = 1/√(σ²_c + eps)       y = γ_c x̂ + β_c
//   running_mean ← (1 - m)·running_mean + m·μ_c
//   running_var  ← (1 - m)·running_var  + m·σ²_c·M/(M - 1)   (unbiased, as PyTorch does)
// Forward (eval): μ, σ² are running_mean, running_var; nothing is updated.
// save_mean = μ, save_invstd = r (C) are what the backward needs.
//
// Backward, with g = dL/dy:
//   dβ_c = Σ g            dγ_c = Σ g·x̂
//   training (μ, σ² depend on x):
//     dx = γ_c r_c · (g - dβ_c/M - x̂·dγ_c/M)
//   eval (μ, σ² are constants):
//     dx = γ_c r_c · g
//
// Fused clamp (the activation after a BatchNorm: ReLU = [0, ∞), ReLU6 = [0, 6]):
//   y = clamp(z, lo, hi),  z = γ_c x̂ + β_c
// and backward first replaces g by g·[lo ≤ z ≤ hi] (clamp's own gradient), z recomputed from x
// with the forward's arithmetic, then proceeds as above. One pass over memory fewer each way than
// batch_norm followed by clamp, and z is never stored.
//
// CPU: one fused pass per statistic per channel (shifted sums in double), parallel over C.
// CUDA: a block per channel reduces (Welford), then an elementwise kernel normalizes.
// dtypes: f32 and f64 everywhere; bf16 and f16 on CUDA (read and written in their own format,
// f32 arithmetic). Every per-channel tensor — weight, bias, running stats, save_mean,
// save_invstd, dweight, dbias — is in the statistics dtype: x's for f32 and f64, f32 for bf16
// and f16. Running stats of another dtype or layout are updated through a copy.
#pragma once
#include <limits>

#include "tensor/tensor.h"

namespace ember {

// The clamp fused after batch norm: none by default.
struct BatchNormClamp {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool active() const { return lo > -std::numeric_limits<double>::infinity() || hi < std::numeric_limits<double>::infinity(); }
};

struct BatchNormResult {
  Tensor out;          // x's shape
  Tensor save_mean;    // (C)
  Tensor save_invstd;  // (C)
};

struct BatchNormGrads {
  Tensor dx;       // x's shape
  Tensor dweight;  // (C)
  Tensor dbias;    // (C)
};

// running_mean / running_var are updated in place when training (and may then be undefined,
// both or neither); in eval they are required.
BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                           Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                           const BatchNormClamp& clamp = {});

// dweight and dbias are always computed (the autograd wrapper drops what is not needed). With a
// clamp, bias (β, or undefined for 0) and the forward's clamp are needed to recompute z.
BatchNormGrads batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool training,
                                   const Tensor& bias = Tensor(), const BatchNormClamp& clamp = {});

// What the CPU and CUDA kernels receive. Tensors are contiguous and share x's dtype; weight,
// bias, running_mean and running_var may be undefined.
struct BatchNormArgs {
  int64_t N = 0, C = 0, L = 0;
  bool training = true;
  double momentum = 0.1, eps = 1e-5;
  BatchNormClamp clamp;
};

}  // namespace ember
