// reduce's kernels (reduce_cpu.cpp, reduce_cuda.cu), chosen by reduce.cpp.
#pragma once
#include "tensor/ops/reduce.h"

namespace ember::cpu {
void reduce(ReduceOp op, const Tensor& x, const Tensor& out, const ReducePlan& plan);  // out fresh
// out[r] = Σ_i a[r, i]·b[r, i] for contiguous f32/f64 a, b seen as (rows, len): mul_sum_to's fast path.
void dot_rows(const Tensor& a, const Tensor& b, const Tensor& out, int64_t rows, int64_t len);
}  // namespace ember::cpu
namespace ember::cuda {
void reduce(ReduceOp op, const Tensor& x, const Tensor& out, const ReducePlan& plan);
}
