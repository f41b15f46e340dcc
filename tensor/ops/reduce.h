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
//
// EMBER_REDUCE_OPS is the one list of the ReduceOps: the enum, the names, the functions
// (ember::sum, ...), the kernels' op switch and the tests' list come from it. Each row: the
// name and what the result holds (values of x's dtype, or i64 indices). mean and var are
// composites of sum.
#pragma once
#include <cstddef>
#include <vector>

#include "tensor/tensor.h"

#define EMBER_REDUCE_OPS(X) \
  X(sum, value)             \
  X(max, value)             \
  X(min, value)             \
  X(argmax, index)          \
  X(argmin, index)

namespace ember {

enum class ReduceOp {
#define EMBER_REDUCE_ENUM(name, result) name,
  EMBER_REDUCE_OPS(EMBER_REDUCE_ENUM)
#undef EMBER_REDUCE_ENUM
};

// Every ReduceOp, in the list's order.
inline constexpr ReduceOp kReduceOps[] = {
#define EMBER_REDUCE_VALUE(name, result) ReduceOp::name,
    EMBER_REDUCE_OPS(EMBER_REDUCE_VALUE)
#undef EMBER_REDUCE_VALUE
};
inline constexpr size_t kReduceOpCount = sizeof(kReduceOps) / sizeof(kReduceOps[0]);

constexpr const char* reduce_op_name(ReduceOp op) {
  constexpr const char* names[] = {
#define EMBER_REDUCE_NAME(name, result) #name,
      EMBER_REDUCE_OPS(EMBER_REDUCE_NAME)
#undef EMBER_REDUCE_NAME
  };
  static_assert(sizeof(names) / sizeof(names[0]) == kReduceOpCount);
  return names[static_cast<size_t>(op)];
}

enum class ReduceResult { value, index };

// An arg op: the result is an i64 index into the reduced dims (flattened in order).
constexpr bool reduce_op_gives_index(ReduceOp op) {
  constexpr ReduceResult results[] = {
#define EMBER_REDUCE_RESULT(name, result) ReduceResult::result,
      EMBER_REDUCE_OPS(EMBER_REDUCE_RESULT)
#undef EMBER_REDUCE_RESULT
  };
  static_assert(sizeof(results) / sizeof(results[0]) == kReduceOpCount);
  return results[static_cast<size_t>(op)] == ReduceResult::index;
}

// Calls fn(std::integral_constant<ReduceOp, op>{}) so kernels are instantiated per op.
template <class Fn>
void dispatch_reduce_op(ReduceOp op, Fn&& fn) {
  switch (op) {
#define EMBER_REDUCE_CASE(name, result) \
  case ReduceOp::name: return fn(std::integral_constant<ReduceOp, ReduceOp::name>{});
    EMBER_REDUCE_OPS(EMBER_REDUCE_CASE)
#undef EMBER_REDUCE_CASE
  }
}

// The shape of a reduction's result.
Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim);

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);

#define EMBER_REDUCE_FUNCTION(name, result)                                                           \
  inline Tensor name(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) { \
    return reduce(ReduceOp::name, x, dims, keepdim);                                                 \
  }
EMBER_REDUCE_OPS(EMBER_REDUCE_FUNCTION)
#undef EMBER_REDUCE_FUNCTION
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
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
