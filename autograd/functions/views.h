// Differentiable view ops on Variables: the forward is the Tensor method of the same name (a
// view sharing storage where the Tensor method gives one); the backward routes the gradient
// back to the input's shape.
//
//   op                      backward (g = dL/dy, x the input)
//   reshape / view / flatten / squeeze / unsqueeze    g reshaped to x's shape
//   permute(dims)           g permuted by the inverse permutation
//   transpose(d0, d1)       g transposed back (d0, d1)
//   narrow / slice / select zeros of x's shape with g copied into the same view of it
//   expand(shape)           sum_to(g, x's shape): summed over the broadcast dims
//   contiguous              g
//   to(dtype)               g converted back to x's dtype
//   to(device)              g moved back to x's device
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace ember {

Variable reshape(const Variable& x, const Shape& shape);
Variable view(const Variable& x, const Shape& shape);
Variable flatten(const Variable& x, int64_t start = 0, int64_t end = -1);
Variable permute(const Variable& x, const std::vector<int64_t>& dims);
Variable transpose(const Variable& x, int64_t d0, int64_t d1);
Variable narrow(const Variable& x, int64_t dim, int64_t start, int64_t length);
Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Variable select(const Variable& x, int64_t dim, int64_t index);
Variable squeeze(const Variable& x);
Variable squeeze(const Variable& x, int64_t dim);
Variable unsqueeze(const Variable& x, int64_t dim);
Variable expand(const Variable& x, const Shape& shape);
Variable contiguous(const Variable& x);
Variable to(const Variable& x, DType dtype);
Variable to(const Variable& x, Device device);

}  // namespace ember
