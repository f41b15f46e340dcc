// Differentiable where (forward math and gradient: tensor/ops/where.h). The condition is a
// plain bool Tensor: it selects, it gets no gradient.
#pragma once
#include "autograd/variable.h"
#include "tensor/ops/where.h"

namespace ember {

// cond ? a : b with cond, a, b broadcast together. da = sum_to(g·[cond], a), db = sum_to(g·[!cond], b).
Variable where(const Tensor& cond, const Variable& a, const Variable& b);

}  // namespace ember
