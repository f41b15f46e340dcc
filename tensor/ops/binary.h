// Elementwise binary ops with NumPy broadcasting: out[i] = a[i] ∘ b[i].
// Both operands must have the same dtype and device (a scalar takes the tensor's dtype).
//
//   op        forward          d/da                 d/db
//   add       a + b            1                    1
//   sub       a - b            1                    -1
//   mul       a * b            b                    a
//   div       a / b            1/b                  -a/b²
//   pow       a^b              b·a^(b-1)            a^b·ln a
//   maximum   max(a, b)        [a >= b]             [a < b]     (ties go to a)
//   minimum   min(a, b)        [a <= b]             [a > b]
//   eq ne lt le gt ge -> bool tensors, not differentiable
// Gradients of broadcast operands are summed back to their shape (autograd/functions/binary.cpp).
#pragma once
#include "tensor/tensor.h"

namespace ember {

enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge };
const char* binary_op_name(BinaryOp op);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, double b);
// out = op(a, b) written into an existing tensor (out's shape must be the broadcast shape).
void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);

inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
inline Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::pow, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }
inline Tensor eq(const Tensor& a, const Tensor& b) { return binary(BinaryOp::eq, a, b); }
inline Tensor ne(const Tensor& a, const Tensor& b) { return binary(BinaryOp::ne, a, b); }
inline Tensor lt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::lt, a, b); }
inline Tensor le(const Tensor& a, const Tensor& b) { return binary(BinaryOp::le, a, b); }
inline Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::gt, a, b); }
inline Tensor ge(const Tensor& a, const Tensor& b) { return binary(BinaryOp::ge, a, b); }

inline Tensor add(const Tensor& a, double b) { return binary(BinaryOp::add, a, b); }
inline Tensor sub(const Tensor& a, double b) { return binary(BinaryOp::sub, a, b); }
inline Tensor mul(const Tensor& a, double b) { return binary(BinaryOp::mul, a, b); }
inline Tensor div(const Tensor& a, double b) { return binary(BinaryOp::div, a, b); }
inline Tensor pow(const Tensor& a, double b) { return binary(BinaryOp::pow, a, b); }
inline Tensor maximum(const Tensor& a, double b) { return binary(BinaryOp::maximum, a, b); }
inline Tensor minimum(const Tensor& a, double b) { return binary(BinaryOp::minimum, a, b); }
inline Tensor eq(const Tensor& a, double b) { return binary(BinaryOp::eq, a, b); }
inline Tensor gt(const Tensor& a, double b) { return binary(BinaryOp::gt, a, b); }
inline Tensor lt(const Tensor& a, double b) { return binary(BinaryOp::lt, a, b); }

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }

// In-place: a = a ∘ b (b broadcast to a's shape).
Tensor& add_(Tensor& a, const Tensor& b);
Tensor& mul_(Tensor& a, double b);

}  // namespace ember
