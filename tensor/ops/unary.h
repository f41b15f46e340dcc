// Elementwise unary ops: out[i] = f(x[i]).
//
// EMBER_UNARY_OPS is the one list of them: the enum, the names, the functions below (ember::exp,
// ...), the kernels' op switch, autograd's functions and the tests' list are all generated from
// it. Each row's comment is its math; the scalar forward f and its gradient rule are written
// once, as UnaryRule<UnaryOp::name> in unary_math.h (float64 references: tests/support/references.h).
// Adding an op: a row here, its rule there, its reference row in the tests — nothing else.
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>

#include "tensor/tensor.h"

//      name           f(x)                                      f'(x)
#define EMBER_UNARY_OPS(X)                                                                                  \
  X(identity)   /* x                                         1                                    */        \
  X(neg)        /* -x                                        -1                                   */        \
  X(exp)        /* eˣ                                        eˣ                                   */        \
  X(log)        /* ln x                                      1/x                                  */        \
  X(sqrt)       /* √x                                        1/(2√x)                              */        \
  X(rsqrt)      /* 1/√x                                      -½ x^(-3/2)                          */        \
  X(abs)        /* |x|                                       sign x                               */        \
  X(relu)       /* max(x, 0)                                 [x > 0]                              */        \
  X(relu6)      /* min(max(x, 0), 6)                         [0 <= x <= 6]  (as clamp's gradient) */        \
  X(sigmoid)    /* σ(x) = 1/(1+e⁻ˣ)                          σ(1-σ)                               */        \
  X(tanh)       /* tanh x                                    1 - tanh²x                           */        \
  X(silu)       /* x·σ(x)                                    σ(1 + x(1-σ))                        */        \
  X(gelu)       /* x·Φ(x) = ½x(1+erf(x/√2))                  Φ(x) + x·φ(x)                        */        \
  X(gelu_tanh)  /* ½x(1+tanh(√(2/π)(x+0.044715x³)))          derivative of that form              */        \
  X(softplus)   /* ln(1 + eˣ)                                σ(x)                                 */

namespace ember {

enum class UnaryOp {
#define EMBER_UNARY_ENUM(name) name,
  EMBER_UNARY_OPS(EMBER_UNARY_ENUM)
#undef EMBER_UNARY_ENUM
};

// Every UnaryOp, in the list's order.
inline constexpr UnaryOp kUnaryOps[] = {
#define EMBER_UNARY_VALUE(name) UnaryOp::name,
    EMBER_UNARY_OPS(EMBER_UNARY_VALUE)
#undef EMBER_UNARY_VALUE
};
inline constexpr size_t kUnaryOpCount = sizeof(kUnaryOps) / sizeof(kUnaryOps[0]);

constexpr const char* unary_op_name(UnaryOp op) {
  constexpr const char* names[] = {
#define EMBER_UNARY_NAME(name) #name,
      EMBER_UNARY_OPS(EMBER_UNARY_NAME)
#undef EMBER_UNARY_NAME
  };
  static_assert(sizeof(names) / sizeof(names[0]) == kUnaryOpCount);
  return names[static_cast<size_t>(op)];
}
// The op named `name` ("gelu"), or nothing.
std::optional<UnaryOp> unary_op_from_name(std::string_view name);

// Floating dtypes (bf16/f16 compute in float); neg and abs take integers too.
Tensor unary(UnaryOp op, const Tensor& x);

#define EMBER_UNARY_FUNCTION(name) \
  inline Tensor name(const Tensor& x) { return unary(UnaryOp::name, x); }
EMBER_UNARY_OPS(EMBER_UNARY_FUNCTION)
#undef EMBER_UNARY_FUNCTION
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace ember
