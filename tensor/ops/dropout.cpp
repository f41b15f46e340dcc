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

// The innermost GlobalSampleScope of this thread (count 0: none).
thread_local int64_t tls_first = 0, tls_count = 0;

// Where a mask of `shape` starts in its draw: at the first global sample's elements under a
// GlobalSampleScope, else at 0.
uint64_t first_element(const char* op, const Shape& shape) {
  if (tls_count == 0) return 0;
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  EMBER_CHECK(numel % tls_count == 0, op, ": a mask of shape ", shape_str(shape), " does not split into the ",
              tls_count, " samples of the GlobalSampleScope (samples must be the outermost dim)");
  return static_cast<uint64_t>(tls_first) * static_cast<uint64_t>(numel / tls_count);
}

// keep ~ Bernoulli(1 - p) of `shape`, scaled by 1/(1 - p) (all zeros when p = 1).
Tensor scaled_keep_mask(const char* op, const Shape& shape, double p, const Tensor& x, Generator* gen) {
  Tensor keep = bernoulli(shape, 1.0 - p, x.dtype(), x.device(), gen, first_element(op, shape));
  if (p >= 1.0) return keep;  // all zeros
  mul_(keep, 1.0 / (1.0 - p));
  return keep;
}

}  // namespace

DropoutResult dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_args("dropout", x, p);
  if (!training || p == 0.0) return {x, Tensor()};
  Tensor mask = scaled_keep_mask("dropout", x.shape(), p, x, gen);
  profile_count(0.0, static_cast<double>(mask.nbytes()));  // the draw; mul counts itself
  return {mul(x, mask), mask};
}

DropoutResult drop_path(const Tensor& x, double p, bool training, Generator* gen) {
  check_args("drop_path", x, p);
  EMBER_CHECK(x.dim() >= 1, "drop_path: x is a scalar, expected (N, ...) with samples along dim 0");
  if (!training || p == 0.0) return {x, Tensor()};
  Shape mask_shape(x.dim(), 1);
  mask_shape[0] = x.size(0);
  Tensor mask = scaled_keep_mask("drop_path", mask_shape, p, x, gen);
  return {mul(x, mask), mask};
}

GlobalSampleScope::GlobalSampleScope(int64_t first, int64_t count) : prev_first_(tls_first), prev_count_(tls_count) {
  EMBER_CHECK(first >= 0 && count > 0, "GlobalSampleScope: expected first >= 0 and count > 0, got first ", first,
              ", count ", count);
  tls_first = first;
  tls_count = count;
}

GlobalSampleScope::~GlobalSampleScope() {
  tls_first = prev_first_;
  tls_count = prev_count_;
}

Tensor dropout_backward(const Tensor& grad, const Tensor& mask) {
  EMBER_CHECK(grad.defined(), "dropout_backward: undefined grad");
  if (!mask.defined()) return grad;
  return mul(grad, mask);
}

}  // namespace ember
