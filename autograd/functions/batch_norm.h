// Differentiable batch norm (forward math and gradients: tensor/ops/batch_norm.h).
// weight and bias may be undefined Variables; the running stats are plain tensors, updated in
// place when training.
#pragma once
#include <functional>

#include "autograd/variable.h"
#include "tensor/ops/batch_norm.h"

namespace ember {

// With a clamp, the activation that follows (ReLU, ReLU6) is fused in: clamp(batch_norm(x)).
Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor running_mean,
                    Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                    const BatchNormClamp& clamp = {});

// Sums a small contiguous f64 CPU tensor (per-channel sums) in place over the ranks of a
// data-parallel group: what makes batch norm's statistics global (dist::enable_sync_batch_norm
// supplies one that all_reduces; the identity is the one-process case).
using ChannelSum = std::function<void(const Tensor&)>;

// Synchronized batch norm (training mode): the statistics are those of the whole global batch,
// every rank's x together, so N ranks normalise exactly as one process does on all their samples.
// With M = Σ_ranks N·L values per channel, in f64:
//   forward   μ = Σ_ranks Σ x / M,  σ² = Σ_ranks Σ (x − μ)² / M       (two sums of (C) tensors)
//             y = clamp(γ (x − μ) r + β),  r = 1/√(σ² + ε)             (batch_norm's eval kernel
//             with μ, σ² as the statistics; running stats updated as batch_norm does, with M)
//   backward  g' = g · [lo ≤ z ≤ hi];  dβ = Σ g',  dγ = Σ g' x̂ on this rank (the parameters'
//             gradients: all_reduce_gradients averages them later, as for every parameter);
//             dx = γ r (g' − (Σ_ranks dβ)/M − x̂ (Σ_ranks dγ)/M)                  (one sum)
// Why the sums over ranks and no 1/N: each rank's loss is the mean over its own samples, so the
// global loss is their average and ∂(global)/∂y = g/N; the later averaging of the parameters'
// gradients divides by N once, which is exactly what is owed. `all_sum` must be called by every rank
// the same number of times in the same order (the same model, the same graph, so it is).
Variable sync_batch_norm(const Variable& x, const Variable& weight, const Variable& bias, Tensor running_mean,
                         Tensor running_var, double momentum, double eps, const BatchNormClamp& clamp,
                         const ChannelSum& all_sum);

}  // namespace ember
