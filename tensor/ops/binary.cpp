#include "tensor/ops/binary.h"

#include "tensor/dispatch.h"
#include "tensor/ops/binary_kernels.h"
#include "tensor/profiler.h"

namespace ember {

static void check_operands(const char* name, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), name, ": undefined tensor");
  EMBER_CHECK(a.dtype() == b.dtype(), name, ": dtypes differ (", dtype_name(a.dtype()), " and ",
              dtype_name(b.dtype()), "); convert one with .to(dtype)");
  EMBER_CHECK(a.device() == b.device(), name, ": tensors on different devices (", a.device().str(), " and ",
              b.device().str(), ")");
}

void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_operands(name, a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  EMBER_CHECK(out.shape() == shape, name, ": output shape ", out.shape_str(), " but operands broadcast to ",
              shape_str(shape));
  EMBER_CHECK(out.device() == a.device(), name, ": output on ", out.device().str(), ", operands on ",
              a.device().str());
  DType want = binary_op_compares(op) ? DType::boolean : a.dtype();
  EMBER_CHECK(out.dtype() == want, name, ": output dtype ", dtype_name(out.dtype()), ", expected ", dtype_name(want));
  profile_count(static_cast<double>(out.numel()), static_cast<double>(out.nbytes() + a.nbytes() + b.nbytes()));
  Tensor ea = a.expand(shape), eb = b.expand(shape);
  dispatch(name, out.device(),
           [&] { cpu::binary(op, out, ea, eb); },
           [&] { cuda::binary(op, out, ea, eb); });
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_operands(name, a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(shape, binary_op_compares(op) ? DType::boolean : a.dtype(), a.device());
  binary_into(op, out, a, b);
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, double b) {
  EMBER_CHECK(a.defined(), binary_op_name(op), ": undefined tensor");
  return binary(op, a, scalar_tensor(b, a.dtype(), a.device()));
}

Tensor& add_(Tensor& a, const Tensor& b) {
  binary_into(BinaryOp::add, a, a, b.expand(a.shape()));
  return a;
}

Tensor& mul_(Tensor& a, double b) {
  binary_into(BinaryOp::mul, a, a, scalar_tensor(b, a.dtype(), a.device()).expand(a.shape()));
  return a;
}

}  // namespace ember
