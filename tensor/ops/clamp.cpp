#include "tensor/ops/clamp.h"

#include <cmath>

#include "tensor/dispatch.h"
#include "tensor/ops/clamp_kernels.h"
#include "tensor/profiler.h"

namespace ember {

static void check_bounds(const char* name, double lo, double hi) {
  EMBER_CHECK(!std::isnan(lo) && !std::isnan(hi), name, ": bounds must not be NaN (got lo ", lo, ", hi ", hi, ")");
  EMBER_CHECK(lo <= hi, name, ": lo ", lo, " is greater than hi ", hi, " (expected lo <= hi)");
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  EMBER_CHECK(x.defined(), "clamp: undefined tensor");
  check_bounds("clamp", lo, hi);
  EMBER_CHECK(x.dtype() != DType::boolean, "clamp: dtype bool not supported (expected a numeric dtype)");
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  profile_count(static_cast<double>(2 * x.numel()), static_cast<double>(2 * x.nbytes()));
  dispatch("clamp", x.device(),
           [&] { cpu::clamp(y, x, lo, hi); },
           [&] { cuda::clamp(y, x, lo, hi); });
  return y;
}

Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi) {
  EMBER_CHECK(grad.defined() && x.defined(), "clamp_backward: undefined tensor");
  check_bounds("clamp_backward", lo, hi);
  EMBER_CHECK(is_floating(grad.dtype()), "clamp_backward: dtype ", dtype_name(grad.dtype()),
              " not supported (expected a floating dtype)");
  EMBER_CHECK(grad.dtype() == x.dtype(), "clamp_backward: gradient has dtype ", dtype_name(grad.dtype()),
              " but x has ", dtype_name(x.dtype()));
  EMBER_CHECK(grad.shape() == x.shape(), "clamp_backward: gradient has shape ", grad.shape_str(), " but x has ",
              x.shape_str(), " (expected equal shapes)");
  EMBER_CHECK(grad.device() == x.device(), "clamp_backward: gradient on ", grad.device().str(), " but x on ",
              x.device().str());
  Tensor dx = empty(grad.shape(), grad.dtype(), grad.device());
  profile_count(static_cast<double>(2 * x.numel()), static_cast<double>(3 * x.nbytes()));
  dispatch("clamp_backward", x.device(),
           [&] { cpu::clamp_backward(dx, grad, x, lo, hi); },
           [&] { cuda::clamp_backward(dx, grad, x, lo, hi); });
  return dx;
}

}  // namespace ember
