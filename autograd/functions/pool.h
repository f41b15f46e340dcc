// Differentiable pooling (forward math and gradients: tensor/ops/pool.h).
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/pool.h"

namespace ember {

Variable max_pool2d(const Variable& x, Size2d kernel, Size2d stride, Size2d padding = 0);
inline Variable max_pool2d(const Variable& x, Size2d kernel) { return max_pool2d(x, kernel, kernel, 0); }
Variable avg_pool2d(const Variable& x, Size2d kernel, Size2d stride, Size2d padding = 0);
inline Variable avg_pool2d(const Variable& x, Size2d kernel) { return avg_pool2d(x, kernel, kernel, 0); }
Variable adaptive_avg_pool2d(const Variable& x, int64_t out_h, int64_t out_w);

}  // namespace ember
