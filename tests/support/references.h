// Float64 references for the op lists (EMBER_UNARY_OPS, EMBER_BINARY_OPS), written here from
// the textbook formulas with <cmath>, independently of the kernels' forms: one row per op, in
// the list's order, checked at compile time. Adding an op to a list without its row here fails
// to compile, so every op is tested.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>

#include "tensor/ops/binary.h"
#include "tensor/ops/unary.h"

namespace ember::testing {

inline double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// f, its derivative f', and the input range [lo, hi] the tests draw from (where f is defined;
// gradient checks keep 0.1 away from 0 when the range spans it, for the kinks of abs and relu).
struct UnaryReference {
  UnaryOp op;
  double (*f)(double);
  double (*df)(double);
  double lo, hi;
};

inline constexpr double kSqrt2OverPi = 0.79788456080286536;  // √(2/π)

inline constexpr UnaryReference kUnaryReferences[] = {
    {UnaryOp::identity, [](double x) { return x; }, [](double) { return 1.0; }, -4, 4},
    {UnaryOp::neg, [](double x) { return -x; }, [](double) { return -1.0; }, -4, 4},
    {UnaryOp::exp, [](double x) { return std::exp(x); }, [](double x) { return std::exp(x); }, -4, 4},
    {UnaryOp::log, [](double x) { return std::log(x); }, [](double x) { return 1.0 / x; }, 0.1, 4},
    {UnaryOp::sqrt, [](double x) { return std::sqrt(x); }, [](double x) { return 0.5 / std::sqrt(x); }, 0.1, 4},
    {UnaryOp::rsqrt, [](double x) { return 1.0 / std::sqrt(x); }, [](double x) { return -0.5 * std::pow(x, -1.5); },
     0.1, 4},
    {UnaryOp::abs, [](double x) { return std::fabs(x); }, [](double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); },
     -4, 4},
    {UnaryOp::relu, [](double x) { return x > 0 ? x : 0.0; }, [](double x) { return x > 0 ? 1.0 : 0.0; }, -4, 4},
    {UnaryOp::relu6, [](double x) { return std::min(std::max(x, 0.0), 6.0); },
     [](double x) { return x >= 0 && x <= 6 ? 1.0 : 0.0; }, -4, 8},
    {UnaryOp::sigmoid, [](double x) { return sigmoid_ref(x); },
     [](double x) { return sigmoid_ref(x) * (1 - sigmoid_ref(x)); }, -4, 4},
    {UnaryOp::tanh, [](double x) { return std::tanh(x); }, [](double x) { return 1.0 / (std::cosh(x) * std::cosh(x)); },
     -4, 4},
    {UnaryOp::silu, [](double x) { return x * sigmoid_ref(x); },
     [](double x) { return sigmoid_ref(x) + x * sigmoid_ref(x) * (1 - sigmoid_ref(x)); }, -4, 4},
    {UnaryOp::gelu, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); },
     [](double x) {
       return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
     },
     -4, 4},
    {UnaryOp::gelu_tanh, [](double x) { return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x))); },
     [](double x) {
       double u = kSqrt2OverPi * (x + 0.044715 * x * x * x);
       double sech2 = 1.0 / (std::cosh(u) * std::cosh(u));
       return 0.5 * (1.0 + std::tanh(u)) + 0.5 * x * sech2 * kSqrt2OverPi * (1.0 + 3 * 0.044715 * x * x);
     },
     -4, 4},
    {UnaryOp::softplus, [](double x) { return std::log(1.0 + std::exp(x)); }, [](double x) { return sigmoid_ref(x); },
     -4, 4},
};

// f(a, b) and the operand ranges (comparisons draw integers in [lo, hi] so ties happen).
struct BinaryReference {
  BinaryOp op;
  double (*f)(double, double);
  double a_lo, a_hi, b_lo, b_hi;
};

inline constexpr double kNaNRef = std::numeric_limits<double>::quiet_NaN();

inline constexpr BinaryReference kBinaryReferences[] = {
    {BinaryOp::add, [](double a, double b) { return a + b; }, -2, 2, -2, 2},
    {BinaryOp::sub, [](double a, double b) { return a - b; }, -2, 2, -2, 2},
    {BinaryOp::mul, [](double a, double b) { return a * b; }, -2, 2, -2, 2},
    {BinaryOp::div, [](double a, double b) { return a / b; }, -2, 2, 0.5, 2},
    {BinaryOp::pow, [](double a, double b) { return std::pow(a, b); }, 0.5, 2, -2, 2},
    {BinaryOp::maximum, [](double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaNRef : std::max(a, b); },
     -2, 2, -2, 2},
    {BinaryOp::minimum, [](double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaNRef : std::min(a, b); },
     -2, 2, -2, 2},
    {BinaryOp::eq, [](double a, double b) { return double(a == b); }, -2, 2, -2, 2},
    {BinaryOp::ne, [](double a, double b) { return double(a != b); }, -2, 2, -2, 2},
    {BinaryOp::lt, [](double a, double b) { return double(a < b); }, -2, 2, -2, 2},
    {BinaryOp::le, [](double a, double b) { return double(a <= b); }, -2, 2, -2, 2},
    {BinaryOp::gt, [](double a, double b) { return double(a > b); }, -2, 2, -2, 2},
    {BinaryOp::ge, [](double a, double b) { return double(a >= b); }, -2, 2, -2, 2},
};

namespace detail {
template <class Row, class Op, size_t N, size_t M>
constexpr bool rows_follow(const Row (&rows)[N], const Op (&ops)[M]) {
  if (N != M) return false;
  for (size_t i = 0; i < N; ++i)
    if (rows[i].op != ops[i]) return false;
  return true;
}
}  // namespace detail

static_assert(detail::rows_follow(kUnaryReferences, kUnaryOps),
              "kUnaryReferences needs one row per UnaryOp, in EMBER_UNARY_OPS's order");
static_assert(detail::rows_follow(kBinaryReferences, kBinaryOps),
              "kBinaryReferences needs one row per BinaryOp, in EMBER_BINARY_OPS's order");

inline const UnaryReference& reference_of(UnaryOp op) { return kUnaryReferences[static_cast<size_t>(op)]; }
inline const BinaryReference& reference_of(BinaryOp op) { return kBinaryReferences[static_cast<size_t>(op)]; }

// Where element i (row-major over `out`) of a NumPy-broadcast operand of shape `in` is.
inline int64_t broadcast_index(const Shape& out, const Shape& in, int64_t i) {
  int64_t index = 0, stride = 1;
  int64_t k = static_cast<int64_t>(in.size()) - 1;
  for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d, --k) {
    int64_t coord = i % out[d];
    i /= out[d];
    if (k < 0) continue;
    if (in[k] != 1) index += coord * stride;
    stride *= in[k];
  }
  return index;
}

}  // namespace ember::testing
