#include "tensor/ops/unary.h"

#include "tensor/dispatch.h"
#include "tensor/ops/unary_kernels.h"
#include "tensor/profiler.h"

namespace ember {

std::optional<UnaryOp> unary_op_from_name(std::string_view name) {
  for (UnaryOp op : kUnaryOps)
    if (name == unary_op_name(op)) return op;
  return std::nullopt;
}

Tensor unary(UnaryOp op, const Tensor& x) {
  const char* name = unary_op_name(op);
  EMBER_CHECK(x.defined(), name, ": undefined tensor");
  EMBER_CHECK(is_floating(x.dtype()) || op == UnaryOp::neg || op == UnaryOp::abs, name, ": dtype ",
              dtype_name(x.dtype()), " not supported (expected a floating dtype)");
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  profile_count(static_cast<double>(x.numel()), static_cast<double>(2 * x.nbytes()));
  dispatch(name, x.device(),
           [&] { cpu::unary(op, out, x); },
           [&] { cuda::unary(op, out, x); });
  return out;
}

}  // namespace ember
