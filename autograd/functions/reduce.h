// Differentiable reductions (forward math and gradients: tensor/ops/reduce.h).
//
//   sum(x, dims)   g broadcast back over the reduced dims
//   mean(x, dims)  g / R broadcast back (R = number of reduced elements)
//   max/min        g / k to each of the k elements equal to the result, 0 elsewhere
//                  (ties split the gradient evenly; a NaN result counts the NaNs as the ties)
//   var(x, dims)   2 (x - mean) g / (R - correction)
//
// `dims` empty means all dims; keepdim as in the tensor ops. argmax/argmin are not
// differentiable and stay tensor-only.
#pragma once
#include <vector>

#include "autograd/variable.h"
#include "tensor/ops/reduce.h"

namespace ember {

Variable sum(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable mean(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable max(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable min(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable var(const Variable& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);

}  // namespace ember
