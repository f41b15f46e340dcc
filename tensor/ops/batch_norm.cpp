#include "tensor/ops/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "tensor/dispatch.h"
#include "tensor/ops/batch_norm_kernels.h"
#include "tensor/ops/norm_dtypes.h"
#include "tensor/profiler.h"

namespace ember {

namespace {

// A per-channel (C) tensor: undefined is allowed when `optional`.
void check_channel_tensor(const char* op, const char* what, const Tensor& t, const Tensor& x, bool optional) {
  if (!t.defined()) {
    EMBER_CHECK(optional, op, ": ", what, " is required here but undefined");
    return;
  }
  int64_t C = x.size(1);
  EMBER_CHECK(t.dim() == 1 && t.size(0) == C, op, ": ", what, " has shape ", t.shape_str(), ", expected [", C,
              "] (one value per channel of x ", x.shape_str(), ")");
  EMBER_CHECK(t.device() == x.device(), op, ": ", what, " is on ", t.device().str(), " but x is on ",
              x.device().str());
  EMBER_CHECK(is_floating(t.dtype()), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
              ", expected a floating dtype");
}

// t as a contiguous tensor of `dtype` (itself when it already is one).
Tensor as_kernel_operand(const Tensor& t, DType dtype) {
  if (!t.defined()) return t;
  return t.to(dtype).contiguous();
}

BatchNormArgs dims_of(const Tensor& x) {
  BatchNormArgs a;
  a.N = x.size(0);
  a.C = x.size(1);
  a.L = x.dim() > 2 ? x.numel() / std::max<int64_t>(a.N * a.C, 1) : 1;
  if (a.N * a.C == 0) a.L = 0;
  return a;
}


void check_clamp(const char* op, const BatchNormClamp& c) {
  EMBER_CHECK(!std::isnan(c.lo) && !std::isnan(c.hi) && c.lo <= c.hi, op, ": clamp bounds must satisfy lo <= hi, got [",
              c.lo, ", ", c.hi, "]");
}

}  // namespace

BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                           Tensor running_var, bool training, double momentum, double eps,
                           const BatchNormClamp& clamp) {
  const char* op = "batch_norm";
  check_clamp(op, clamp);
  EMBER_CHECK(x.defined(), op, ": undefined input");
  EMBER_CHECK(x.dim() >= 2, op, ": x has shape ", x.shape_str(), ", expected (N, C) or (N, C, *)");
  norm_dtypes::check_x(op, x);
  EMBER_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  EMBER_CHECK(momentum >= 0 && momentum <= 1, op, ": momentum must be in [0, 1], got ", momentum);
  check_channel_tensor(op, "weight", weight, x, true);
  check_channel_tensor(op, "bias", bias, x, true);
  check_channel_tensor(op, "running_mean", running_mean, x, training);
  check_channel_tensor(op, "running_var", running_var, x, training);
  EMBER_CHECK(running_mean.defined() == running_var.defined(), op,
              ": running_mean and running_var must be both defined or both undefined");
  BatchNormArgs args = dims_of(x);
  args.training = training;
  args.momentum = momentum;
  args.eps = eps;
  args.clamp = clamp;
  if (training)
    EMBER_CHECK(args.N * args.L > 1, op, ": training needs more than one value per channel, got x of shape ",
                x.shape_str());

  Tensor xc = x.contiguous();
  const DType st = norm_dtypes::stat(x);
  Tensor w = as_kernel_operand(weight, st), b = as_kernel_operand(bias, st);
  // Running stats in another dtype or layout are updated through a copy, written back below.
  Tensor rm = as_kernel_operand(running_mean, st), rv = as_kernel_operand(running_var, st);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = empty({args.C}, st, x.device());
  Tensor save_invstd = empty({args.C}, st, x.device());
  profile_count(8.0 * x.numel(), static_cast<double>((training ? 3 : 2) * x.nbytes()));
  dispatch(op, x.device(),
           [&] { cpu::batch_norm_forward(xc, w, b, rm, rv, out, save_mean, save_invstd, args); },
           [&] { cuda::batch_norm_forward(xc, w, b, rm, rv, out, save_mean, save_invstd, args); });
  if (training && rm.defined()) {
    if (rm.storage() != running_mean.storage()) running_mean.copy_(rm);
    if (rv.storage() != running_var.storage()) running_var.copy_(rv);
  }
  return {out, save_mean, save_invstd};
}

BatchNormGrads batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool training,
                                   const Tensor& bias, const BatchNormClamp& clamp) {
  const char* op = "batch_norm_backward";
  check_clamp(op, clamp);
  EMBER_CHECK(grad.defined() && x.defined(), op, ": undefined grad or x");
  EMBER_CHECK(x.dim() >= 2, op, ": x has shape ", x.shape_str(), ", expected (N, C) or (N, C, *)");
  EMBER_CHECK(grad.shape() == x.shape(), op, ": grad has shape ", grad.shape_str(), " but x has ", x.shape_str());
  EMBER_CHECK(grad.dtype() == x.dtype(), op, ": grad has dtype ", dtype_name(grad.dtype()), " but x has ",
              dtype_name(x.dtype()));
  EMBER_CHECK(grad.device() == x.device(), op, ": grad is on ", grad.device().str(), " but x is on ",
              x.device().str());
  norm_dtypes::check_x(op, x);
  check_channel_tensor(op, "weight", weight, x, true);
  check_channel_tensor(op, "bias", bias, x, true);
  check_channel_tensor(op, "save_mean", save_mean, x, false);
  check_channel_tensor(op, "save_invstd", save_invstd, x, false);
  BatchNormArgs args = dims_of(x);
  args.training = training;
  args.clamp = clamp;
  Tensor gc = grad.contiguous(), xc = x.contiguous();
  const DType st = norm_dtypes::stat(x);
  Tensor w = as_kernel_operand(weight, st), b = as_kernel_operand(bias, st);
  Tensor mean = as_kernel_operand(save_mean, st), invstd = as_kernel_operand(save_invstd, st);
  Tensor dx = empty(x.shape(), x.dtype(), x.device());
  Tensor dweight = empty({args.C}, st, x.device());
  Tensor dbias = empty({args.C}, st, x.device());
  profile_count(8.0 * x.numel(), static_cast<double>((training ? 5 : 4) * x.nbytes()));
  dispatch(op, x.device(),
           [&] { cpu::batch_norm_backward(gc, xc, w, b, mean, invstd, dx, dweight, dbias, args); },
           [&] { cuda::batch_norm_backward(gc, xc, w, b, mean, invstd, dx, dweight, dbias, args); });
  return {dx, dweight, dbias};
}

}  // namespace ember
