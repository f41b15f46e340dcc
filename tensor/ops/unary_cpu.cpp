#include "tensor/cpu/loops.h"
#include "tensor/ops/unary_functors.h"

namespace ember::cpu {

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  dispatch_numeric(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      if (op == UnaryOp::neg) return map<T, T>(out, x, [](T v) { return static_cast<T>(-v); });
      return map<T, T>(out, x, [](T v) { return static_cast<T>(std::is_signed_v<T> && v < T(0) ? -v : v); });
    } else {
      dispatch_unary_op(op, [&](auto op_tag) { map<T, T>(out, x, UnaryFunctor<decltype(op_tag)::value, T>{}); });
    }
  });
}

}  // namespace ember::cpu
