// Elementwise binary ops with NumPy broadcasting: out[i] = a[i] ∘ b[i].
// Both operands must have the same dtype and device (a scalar takes the tensor's dtype).
//
// EMBER_BINARY_OPS is the one list of them: the enum, the names, the functions below
// (ember::add, ...), the kernels' op switch and the tests' list are generated from it. Each row:
// the name, whether the op computes (a value of the operands' dtype) or compares (a bool
// tensor, not differentiable), and, as a comment, its math. The scalar math is BinaryFunctor
// (binary_functors.h); the gradients are autograd/functions/binary.cpp's, where broadcast
// operands' gradients are summed back to their shape.
#pragma once
#include <cstddef>

#include "tensor/tensor.h"

//      name     kind        forward       d/da          d/db
#define EMBER_BINARY_OPS(X)                                                              \
  X(add, compute)      /* a + b         1             1                            */   \
  X(sub, compute)      /* a - b         1             -1                           */   \
  X(mul, compute)      /* a * b         b             a                            */   \
  X(div, compute)      /* a / b         1/b           -a/b²                        */   \
  X(pow, compute)      /* a^b           b·a^(b-1)     a^b·ln a                     */   \
  X(maximum, compute)  /* max(a, b)     [a >= b]      [a < b]   (ties go to a)     */   \
  X(minimum, compute)  /* min(a, b)     [a <= b]      [a > b]                      */   \
  X(eq, compare)       /* a == b                                                   */   \
  X(ne, compare)       /* a != b                                                   */   \
  X(lt, compare)       /* a < b                                                    */   \
  X(le, compare)       /* a <= b                                                   */   \
  X(gt, compare)       /* a > b                                                    */   \
  X(ge, compare)       /* a >= b                                                   */

namespace ember {

enum class BinaryOp {
#define EMBER_BINARY_ENUM(name, kind) name,
  EMBER_BINARY_OPS(EMBER_BINARY_ENUM)
#undef EMBER_BINARY_ENUM
};

// Every BinaryOp, in the list's order.
inline constexpr BinaryOp kBinaryOps[] = {
#define EMBER_BINARY_VALUE(name, kind) BinaryOp::name,
    EMBER_BINARY_OPS(EMBER_BINARY_VALUE)
#undef EMBER_BINARY_VALUE
};
inline constexpr size_t kBinaryOpCount = sizeof(kBinaryOps) / sizeof(kBinaryOps[0]);

constexpr const char* binary_op_name(BinaryOp op) {
  constexpr const char* names[] = {
#define EMBER_BINARY_NAME(name, kind) #name,
      EMBER_BINARY_OPS(EMBER_BINARY_NAME)
#undef EMBER_BINARY_NAME
  };
  static_assert(sizeof(names) / sizeof(names[0]) == kBinaryOpCount);
  return names[static_cast<size_t>(op)];
}

enum class BinaryKind { compute, compare };

// A comparison: its result is a bool tensor.
constexpr bool binary_op_compares(BinaryOp op) {
  constexpr BinaryKind kinds[] = {
#define EMBER_BINARY_KIND(name, kind) BinaryKind::kind,
      EMBER_BINARY_OPS(EMBER_BINARY_KIND)
#undef EMBER_BINARY_KIND
  };
  static_assert(sizeof(kinds) / sizeof(kinds[0]) == kBinaryOpCount);
  return kinds[static_cast<size_t>(op)] == BinaryKind::compare;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, double b);
// out = op(a, b) written into an existing tensor (out's shape must be the broadcast shape).
void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);

#define EMBER_BINARY_FUNCTIONS(name, kind)                                                      \
  inline Tensor name(const Tensor& a, const Tensor& b) { return binary(BinaryOp::name, a, b); } \
  inline Tensor name(const Tensor& a, double b) { return binary(BinaryOp::name, a, b); }
EMBER_BINARY_OPS(EMBER_BINARY_FUNCTIONS)
#undef EMBER_BINARY_FUNCTIONS

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
