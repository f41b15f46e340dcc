// Reductions over any set of dims (an empty list means all dims), with keepdim.
//
//   sum(x)_o     = Σ_r x[o, r]                 d/dx = g broadcast back over the reduced dims
//   mean(x)_o    = sum / R                      d/dx = g / R
//   max/min(x)_o = max_r x[o, r]                d/dx = g / k at each of the k elements equal to the
//                                              result (ties split it evenly), 0 elsewhere
//   argmax/argmin -> i64 index into the reduced dims (flattened in order), not differentiable
//   var(x)_o     = Σ_r (x - mean)² / (R - correction)   d/dx = 2 (x - mean) g / (R - correction)
//
// CPU: double accumulation for f32 sums; parallel over outputs, or over the reduced range
// when there are fewer outputs than threads. CUDA: a block per output, tree reduction in
// shared memory.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace ember {

enum class ReduceOp { sum, max, min, argmax, argmin };

// The shape of a reduction's result.
Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim);

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, const char* name);

inline Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::sum, x, dims, keepdim, "sum");
}
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
inline Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::max, x, dims, keepdim, "max");
}
inline Tensor min(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::min, x, dims, keepdim, "min");
}
inline Tensor argmax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::argmax, x, dims, keepdim, "argmax");
}
inline Tensor argmin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::argmin, x, dims, keepdim, "argmin");
}
// correction = 1 gives the unbiased estimate, 0 the population variance (BatchNorm's).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);

// sum_to(a · b, shape) for a and b of one shape: what the gradient of a broadcast product
// needs (the squeeze-excite scale's gradient is Σ_hw g·x). When a and b are contiguous f32/f64
// CPU tensors and `shape` keeps leading dims and sets trailing ones to 1, each output is one
// vectorized dot product and the product is never stored; otherwise it is mul then sum.
Tensor mul_sum_to(const Tensor& a, const Tensor& b, const Shape& shape);

// The reduced dims of x for `dims` (normalized), and their element count.
int64_t reduced_count(const Shape& shape, const std::vector<int64_t>& dims);

// What the CPU and CUDA kernels receive: output element o reads x at
//   base(o) + Σ_k r_k · red_strides[k],  with base(o) = Σ_j o_j · kept_strides[j].
struct ReducePlan {
  Shape kept_sizes, kept_strides;  // the output's dims (without keepdim ones) and their x strides
  Shape red_sizes, red_strides;    // the reduced dims and their x strides
  int64_t outputs = 1, reduced = 1;
};

}  // namespace ember
