#include "tensor/ops/layer_norm.h"

#include <algorithm>

#include "tensor/dispatch.h"
#include "tensor/ops/layer_norm_kernels.h"
#include "tensor/ops/norm_dtypes.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

void check_input(const char* op, const Tensor& x) {
  EMBER_CHECK(x.defined(), op, ": undefined input");
  EMBER_CHECK(x.dim() >= 1, op, ": x is a scalar, expected (*, D)");
  norm_dtypes::check_x(op, x);
}

// A tensor of `shape` on x's device (undefined allowed when `optional`), returned contiguous in x's dtype.
Tensor checked_operand(const char* op, const char* what, const Tensor& t, const Tensor& x, const Shape& shape,
                       bool optional) {
  if (!t.defined()) {
    EMBER_CHECK(optional, op, ": ", what, " is undefined");
    return t;
  }
  EMBER_CHECK(t.shape() == shape, op, ": ", what, " has shape ", t.shape_str(), ", expected ", shape_str(shape),
              " (x is ", x.shape_str(), ")");
  EMBER_CHECK(t.device() == x.device(), op, ": ", what, " is on ", t.device().str(), " but x is on ",
              x.device().str());
  EMBER_CHECK(is_floating(t.dtype()), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
              ", expected a floating dtype");
  return t.to(norm_dtypes::stat(x)).contiguous();
}

Shape row_shape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 1); }

}  // namespace

int64_t layer_norm_backward_chunks(int64_t rows) {
  return std::max<int64_t>(1, std::min<int64_t>(256, (rows + 63) / 64));
}

LayerNormResult layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_input(op, x);
  EMBER_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  const int64_t D = x.size(-1);
  EMBER_CHECK(D > 0, op, ": the normalized dim is empty (x is ", x.shape_str(), ")");
  const int64_t rows = x.numel() / D;
  Tensor w = checked_operand(op, "weight", weight, x, {D}, true);
  Tensor b = checked_operand(op, "bias", bias, x, {D}, true);
  Tensor xc = x.contiguous();
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  Tensor mean = empty(row_shape(x), norm_dtypes::stat(x), x.device());
  Tensor rstd = empty(row_shape(x), norm_dtypes::stat(x), x.device());
  profile_count(8.0 * x.numel(), static_cast<double>(2 * x.nbytes()));
  dispatch(op, x.device(),
           [&] { cpu::layer_norm_forward(xc, w, b, out, mean, rstd, rows, D, eps); },
           [&] { cuda::layer_norm_forward(xc, w, b, out, mean, rstd, rows, D, eps); });
  return {out, mean, rstd};
}

LayerNormGrads layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                   const Tensor& rstd) {
  const char* op = "layer_norm_backward";
  check_input(op, x);
  EMBER_CHECK(grad.defined(), op, ": undefined grad");
  EMBER_CHECK(grad.shape() == x.shape(), op, ": grad has shape ", grad.shape_str(), " but x has ", x.shape_str());
  EMBER_CHECK(grad.dtype() == x.dtype(), op, ": grad has dtype ", dtype_name(grad.dtype()), " but x has ",
              dtype_name(x.dtype()));
  EMBER_CHECK(grad.device() == x.device(), op, ": grad is on ", grad.device().str(), " but x is on ",
              x.device().str());
  const int64_t D = x.size(-1);
  EMBER_CHECK(D > 0, op, ": the normalized dim is empty (x is ", x.shape_str(), ")");
  const int64_t rows = x.numel() / D;
  Tensor w = checked_operand(op, "weight", weight, x, {D}, true);
  Tensor m = checked_operand(op, "mean", mean, x, row_shape(x), false);
  Tensor r = checked_operand(op, "rstd", rstd, x, row_shape(x), false);
  Tensor gc = grad.contiguous(), xc = x.contiguous();
  Tensor dx = empty(x.shape(), x.dtype(), x.device());
  Tensor dweight = empty({D}, norm_dtypes::stat(x), x.device());
  Tensor dbias = empty({D}, norm_dtypes::stat(x), x.device());
  profile_count(12.0 * x.numel(), static_cast<double>(3 * x.nbytes()));
  dispatch(op, x.device(),
           [&] { cpu::layer_norm_backward(gc, xc, w, m, r, dx, dweight, dbias, rows, D); },
           [&] { cuda::layer_norm_backward(gc, xc, w, m, r, dx, dweight, dbias, rows, D); });
  return {dx, dweight, dbias};
}

}  // namespace ember
