#include "tensor/ops/unary_backward.h"

#include "tensor/dispatch.h"
#include "tensor/ops/unary_math.h"
#include "tensor/ops/unary_backward_kernels.h"
#include "tensor/profiler.h"

namespace ember {

UnaryGradReads unary_grad_reads(UnaryOp op) { return unary_grad_reads_of(op); }

Tensor unary_backward(UnaryOp op, const Tensor& grad, const Tensor& x, const Tensor& y) {
  const std::string name = std::string(unary_op_name(op)) + "_backward";
  EMBER_CHECK(grad.defined(), name, ": undefined gradient");
  UnaryGradReads reads = unary_grad_reads_of(op);
  // v: the saved tensor the rule reads (grad itself for neg, whose rule reads nothing).
  const Tensor& v = reads == UnaryGradReads::input ? x : (reads == UnaryGradReads::output ? y : grad);
  const char* which = reads == UnaryGradReads::input ? "the input x" : "the output y";
  EMBER_CHECK(v.defined(), name, ": needs ", which, " of the forward, got an undefined tensor");
  EMBER_CHECK(is_floating(grad.dtype()), name, ": dtype ", dtype_name(grad.dtype()),
              " not supported (expected a floating dtype)");
  EMBER_CHECK(v.dtype() == grad.dtype(), name, ": gradient has dtype ", dtype_name(grad.dtype()), " but ", which,
              " has ", dtype_name(v.dtype()));
  EMBER_CHECK(v.shape() == grad.shape(), name, ": gradient has shape ", grad.shape_str(), " but ", which,
              " has ", v.shape_str(), " (expected equal shapes)");
  EMBER_CHECK(v.device() == grad.device(), name, ": gradient on ", grad.device().str(), " but ", which, " on ",
              v.device().str());
  Tensor dx = empty(grad.shape(), grad.dtype(), grad.device());
  const double reads_bytes = reads == UnaryGradReads::nothing ? 0.0 : static_cast<double>(v.nbytes());
  profile_count(static_cast<double>(grad.numel()), static_cast<double>(2 * grad.nbytes()) + reads_bytes);
  dispatch(name, grad.device(),
           [&] { cpu::unary_backward(op, dx, grad, v); },
           [&] { cuda::unary_backward(op, dx, grad, v); });
  return dx;
}

}  // namespace ember
