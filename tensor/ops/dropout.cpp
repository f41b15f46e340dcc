#include "tensor/ops/dropout.h"

#include "tensor/ops/binary.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

void check_args(const char* op, const Tensor& x, double p) {
  EMBER_CHECK(x.defined(), op, ": undefined input");
  EMBER_CHECK(is_floating(x.dtype()), op, ": x has dtype ", dtype_name(x.dtype()), ", expected a floating dtype");
  EMBER_CHECK(p >= 0 && p <= 1, op, ": p must be in [0, 1], got ", p);
}

// keep ~ Bernoulli(1 - p) of `shape`, scaled by 1/(1 - p) (all zeros when p = 1).
Tensor scaled_keep_mask(const Shape& shape, double p, const Tensor& x, Generator* gen) {
  Tensor keep = bernoulli(shape, 1.0 - p, x.dtype(), x.device(), gen);
  if (p >= 1.0) return keep;  // all zeros
  mul_(keep, 1.0 / (1.0 - p));
  return keep;
}

}  // namespace

DropoutResult dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_args("dropout", x, p);
  if (!training || p == 0.0) return {x, Tensor()};
  Tensor mask = scaled_keep_mask(x.shape(), p, x, gen);
  profile_count(0.0, static_cast<double>(mask.nbytes()));  // the draw; mul counts itself
  return {mul(x, mask), mask};
}

DropoutResult drop_path(const Tensor& x, double p, bool training, Generator* gen) {
  check_args("drop_path", x, p);
  EMBER_CHECK(x.dim() >= 1, "drop_path: x is a scalar, expected (N, ...) with samples along dim 0");
  if (!training || p == 0.0) return {x, Tensor()};
  Shape mask_shape(x.dim(), 1);
  mask_shape[0] = x.size(0);
  Tensor mask = scaled_keep_mask(mask_shape, p, x, gen);
  return {mul(x, mask), mask};
}

Tensor dropout_backward(const Tensor& grad, const Tensor& mask) {
  EMBER_CHECK(grad.defined(), "dropout_backward: undefined grad");
  if (!mask.defined()) return grad;
  return mul(grad, mask);
}

}  // namespace ember
