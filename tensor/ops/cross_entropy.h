// Cross-entropy of logits against class ids or class probabilities, fused with log-softmax.
//
//   logits x: (N, C), any floating dtype (f32/f64 on the CPU).
//   target:   (N,) i64 class ids t_n in [0, C), or (N, C) probabilities t_nc (mixup/cutmix) of
//             the logits' dtype.
//   With label smoothing ε the target distribution is
//     ids:    q_nc = (1 - ε)·[c == t_n] + ε/C
//     probs:  q_nc = (1 - ε)·t_nc + ε/C
//   lse_n  = log Σ_c exp(x_nc)                                   (max-subtracted, as in softmax.h)
//   loss_n = -Σ_c q_nc · log_softmax(x)_nc = Q_n·lse_n - Σ_c q_nc·x_nc,   Q_n = Σ_c q_nc
//            (Q_n = 1 for ids and for probabilities that sum to 1)
//   reduction: none -> loss (N,); sum -> Σ_n loss_n; mean -> Σ_n loss_n / N (0-d)
//
//   gradient: dx_nc = (Q_n·softmax(x)_nc - q_nc)·g_n, with g_n = g (sum), g/N (mean), g_n (none);
//             = (softmax(x) - q)·g for the usual normalised targets. The backward kernel
//             recomputes softmax from x and the saved lse (N,), so nothing (N, C) is kept.
//
// One pass over each row computes the online (max, Σexp), Σ x and (for probabilities) Σ t, Σ t·x.
// A class id outside [0, C) throws an Error naming it, the row and C. On the CPU the call throws.
// On CUDA the call does not wait for the kernel to find out (that would stop the host in every
// training step): the kernel flags the smallest bad row, the flag is copied back on the stream,
// and the Error ("cross_entropy: target class id 7 (row 1) is out of range for 5 classes
// (expected 0 to 4); found on cuda:0 after the call had returned ...") is thrown by the next
// host sync ember makes (loss.item(), .cpu(), cuda::synchronize()) or by a later cross_entropy
// call once the kernel has run. The rows with a bad id count 0 in the loss meanwhile.
// EMBER_CUDA_SYNC=1 makes the call itself throw (cuda::defer_check, tensor/cuda/runtime.h).
#pragma once
#include "tensor/tensor.h"

namespace ember {

enum class Reduction { none, mean, sum };

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                     Reduction reduction = Reduction::mean);

// The forward with what the backward needs: the loss (as cross_entropy returns it) and
// lse (N,) in the accumulation dtype (f64 for f64 logits, f32 otherwise).
struct CrossEntropyForward {
  Tensor loss;
  Tensor lse;
};
CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                                          Reduction reduction = Reduction::mean);

// dx (N, C) in the logits' dtype. grad has the loss's shape; lse comes from cross_entropy_forward.
Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                              double label_smoothing = 0.0, Reduction reduction = Reduction::mean);

}  // namespace ember
