// copy: dst[i] = convert(src[i]) — the one op behind contiguous(), clone(), to(dtype),
// to(device) and copy_(). src is broadcast to dst's shape; dtypes and devices may differ.
// fill: dst[i] = value.
// Not differentiable by itself (autograd's to/contiguous record their own identity backward).
#pragma once
#include "tensor/tensor.h"

namespace ember {

void copy_into(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);

}  // namespace ember
