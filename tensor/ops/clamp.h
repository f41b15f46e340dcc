// Clamping into [lo, hi]; ±infinity makes it one-sided.
//
//   forward    y = min(max(x, lo), hi)            NaN stays NaN
//   gradient   dx = g · [lo <= x <= hi]           (g passes at the bounds themselves)
//
// Shapes: x (any, any strides) -> y of x's shape and dtype, contiguous. clamp_backward:
// grad and x of one shape -> dx of that shape. Every numeric dtype forward (integers clamp to
// ceil(lo), floor(hi)); floating dtypes backward; bf16/f16 compute in float.
#pragma once
#include "tensor/tensor.h"

namespace ember {

Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi);

}  // namespace ember
