// Differentiable cat, stack, split, chunk and pad (forward math and gradients:
// tensor/ops/shape_ops.h). split and chunk return differentiable narrow() views.
#pragma once
#include <vector>

#include "autograd/variable.h"
#include "tensor/ops/shape_ops.h"

namespace ember {

Variable cat(const std::vector<Variable>& xs, int64_t dim = 0);
Variable stack(const std::vector<Variable>& xs, int64_t dim = 0);
std::vector<Variable> split(const Variable& x, int64_t split_size, int64_t dim = 0);
std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Variable> chunk(const Variable& x, int64_t chunks, int64_t dim = 0);
Variable pad(const Variable& x, const std::vector<int64_t>& pads, double value = 0.0);

}  // namespace ember
