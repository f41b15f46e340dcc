#include "tensor/ops/where.h"

#include "tensor/dispatch.h"
#include "tensor/ops/where_kernels.h"
#include "tensor/profiler.h"

namespace ember {

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(cond.defined() && a.defined() && b.defined(), "where: undefined tensor");
  EMBER_CHECK(cond.dtype() == DType::boolean, "where: condition has dtype ", dtype_name(cond.dtype()),
              " (expected bool; make one with a comparison such as gt(x, 0.0))");
  EMBER_CHECK(a.dtype() == b.dtype(), "where: dtypes differ (", dtype_name(a.dtype()), " and ",
              dtype_name(b.dtype()), "); convert one with .to(dtype)");
  EMBER_CHECK(cond.device() == a.device() && a.device() == b.device(), "where: tensors on different devices (cond ",
              cond.device().str(), ", a ", a.device().str(), ", b ", b.device().str(), ")");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, a.dtype(), a.device());
  profile_count(static_cast<double>(out.numel()),
                static_cast<double>(out.nbytes() + cond.nbytes() + a.nbytes() + b.nbytes()));
  Tensor ec = cond.expand(shape), ea = a.expand(shape), eb = b.expand(shape);
  dispatch("where", out.device(),
           [&] { cpu::where(out, ec, ea, eb); },
           [&] { cuda::where(out, ec, ea, eb); });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, double b) {
  EMBER_CHECK(a.defined(), "where: undefined tensor");
  return where(cond, a, scalar_tensor(b, a.dtype(), a.device()));
}

Tensor where(const Tensor& cond, double a, const Tensor& b) {
  EMBER_CHECK(b.defined(), "where: undefined tensor");
  return where(cond, scalar_tensor(a, b.dtype(), b.device()), b);
}

}  // namespace ember
