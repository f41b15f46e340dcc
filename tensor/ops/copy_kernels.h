// copy's kernels (copy_cpu.cpp, copy_cuda.cu), chosen by copy.cpp.
#pragma once
#include "tensor/ops/copy.h"

namespace ember::cpu {
void copy_strided(const Tensor& dst, const Tensor& src);  // same device, src expanded to dst, any dtypes
void fill(const Tensor& dst, double value);               // writes only (dst may be fresh storage)
}  // namespace ember::cpu
namespace ember::cuda {
void copy_strided(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
}  // namespace ember::cuda
