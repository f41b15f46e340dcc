#include "tensor/ops/adamw.h"

#include <cmath>

#include "tensor/dispatch.h"
#include "tensor/ops/adamw_kernels.h"
#include "tensor/profiler.h"

namespace ember {

static void check_operand(const Tensor& param, const Tensor& t, const char* what) {
  EMBER_CHECK(t.defined(), "adamw_update: ", what, " is undefined");
  EMBER_CHECK(t.shape() == param.shape(), "adamw_update: ", what, " has shape ", t.shape_str(),
              ", expected the parameter's ", param.shape_str());
  EMBER_CHECK(t.dtype() == param.dtype(), "adamw_update: ", what, " has dtype ", dtype_name(t.dtype()),
              ", expected the parameter's ", dtype_name(param.dtype()));
  EMBER_CHECK(t.device() == param.device(), "adamw_update: ", what, " is on ", t.device().str(),
              ", the parameter on ", param.device().str());
  EMBER_CHECK(t.is_contiguous(), "adamw_update: ", what, " (shape ", t.shape_str(), ") must be contiguous");
}

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWStep& s) {
  EMBER_CHECK(param.defined(), "adamw_update: the parameter is undefined");
  EMBER_CHECK(param.dtype() == DType::f32 || param.dtype() == DType::f64, "adamw_update: parameter dtype ",
              dtype_name(param.dtype()), " not supported (expected f32 or f64)");
  check_operand(param, param, "the parameter");
  check_operand(param, grad, "grad");
  check_operand(param, exp_avg, "exp_avg");
  check_operand(param, exp_avg_sq, "exp_avg_sq");
  EMBER_CHECK(s.step >= 1, "adamw_update: step ", s.step, " (expected >= 1: t counts this step)");
  EMBER_CHECK(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1, "adamw_update: betas (", s.beta1, ", ",
              s.beta2, ") must lie in [0, 1)");
  EMBER_CHECK(s.lr >= 0 && s.eps >= 0 && s.weight_decay >= 0, "adamw_update: lr ", s.lr, ", eps ", s.eps,
              " and weight_decay ", s.weight_decay, " must be >= 0");

  const double t = static_cast<double>(s.step);
  AdamWCoefficients c;
  c.beta1 = s.beta1;
  c.one_minus_beta1 = 1.0 - s.beta1;
  c.beta2 = s.beta2;
  c.one_minus_beta2 = 1.0 - s.beta2;
  c.eps = s.eps;
  c.decay_factor = s.decoupled ? 1.0 - s.lr * s.weight_decay : 1.0;
  c.l2 = s.decoupled ? 0.0 : s.weight_decay;
  c.step_size = s.lr / (1.0 - std::pow(s.beta1, t));
  c.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(s.beta2, t));

  // per element: ~14 flops; reads w, g, m, v and writes w, m, v
  profile_count(14.0 * static_cast<double>(param.numel()), 7.0 * static_cast<double>(param.nbytes()));
  if (param.numel() == 0) return;
  dispatch("adamw_update", param.device(),
           [&] { cpu::adamw_update(param, grad, exp_avg, exp_avg_sq, c); },
           [&] { cuda::adamw_update(param, grad, exp_avg, exp_avg_sq, c); });
}

}  // namespace ember
