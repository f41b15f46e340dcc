// Differentiable cross-entropy (forward math and gradient: tensor/ops/cross_entropy.h).
// The target (class ids or probabilities) is data, not differentiated.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/cross_entropy.h"

namespace ember {

Variable cross_entropy(const Variable& logits, const Tensor& target, double label_smoothing = 0.0,
                       Reduction reduction = Reduction::mean);

}  // namespace ember
