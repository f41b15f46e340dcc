#include "tensor/ops/sgd.h"

#include "tensor/dispatch.h"
#include "tensor/ops/sgd_kernels.h"
#include "tensor/profiler.h"

namespace ember {

static void check_operand(const Tensor& param, const Tensor& t, const char* what) {
  EMBER_CHECK(t.defined(), "sgd_update: ", what, " is undefined");
  EMBER_CHECK(t.shape() == param.shape(), "sgd_update: ", what, " has shape ", t.shape_str(),
              ", expected the parameter's ", param.shape_str());
  EMBER_CHECK(t.dtype() == param.dtype(), "sgd_update: ", what, " has dtype ", dtype_name(t.dtype()),
              ", expected the parameter's ", dtype_name(param.dtype()));
  EMBER_CHECK(t.device() == param.device(), "sgd_update: ", what, " is on ", t.device().str(),
              ", the parameter on ", param.device().str());
  EMBER_CHECK(t.is_contiguous(), "sgd_update: ", what, " (shape ", t.shape_str(), ") must be contiguous");
}

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s) {
  EMBER_CHECK(param.defined(), "sgd_update: the parameter is undefined");
  EMBER_CHECK(param.dtype() == DType::f32 || param.dtype() == DType::f64, "sgd_update: parameter dtype ",
              dtype_name(param.dtype()), " not supported (expected f32 or f64)");
  check_operand(param, param, "the parameter");
  check_operand(param, grad, "grad");
  if (s.momentum != 0.0) check_operand(param, momentum_buffer, "momentum_buffer");
  EMBER_CHECK(s.lr >= 0 && s.momentum >= 0 && s.weight_decay >= 0, "sgd_update: lr ", s.lr, ", momentum ",
              s.momentum, " and weight_decay ", s.weight_decay, " must be >= 0");
  EMBER_CHECK(!s.nesterov || (s.momentum > 0 && s.dampening == 0), "sgd_update: Nesterov momentum needs momentum > 0 "
              "and dampening 0 (got momentum ", s.momentum, ", dampening ", s.dampening, ")");

  const double tensors = s.momentum != 0.0 ? 5.0 : 3.0;  // w, g (, b) read; w (, b) written
  profile_count(6.0 * static_cast<double>(param.numel()), tensors * static_cast<double>(param.nbytes()));
  if (param.numel() == 0) return;
  dispatch("sgd_update", param.device(),
           [&] { cpu::sgd_update(param, grad, momentum_buffer, s); },
           [&] { cuda::sgd_update(param, grad, momentum_buffer, s); });
}

}  // namespace ember
