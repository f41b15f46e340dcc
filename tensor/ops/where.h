// Elementwise selection with three-way NumPy broadcasting.
//
//   forward    out[i] = cond[i] ? a[i] : b[i]
//   gradient   da = sum_to(g · [cond], shape(a)),   db = sum_to(g · [!cond], shape(b))
//              (cond gets none; see autograd/functions/where.cpp)
//
// Shapes: cond (bool), a and b broadcast together to the output's shape; a and b share a
// dtype (any) and the output has it; all three on one device.
#pragma once
#include "tensor/tensor.h"

namespace ember {

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);  // b: a scalar of a's dtype
Tensor where(const Tensor& cond, double a, const Tensor& b);

}  // namespace ember
