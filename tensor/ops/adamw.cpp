#include "tensor/ops/adamw.h"

#include <cmath>

#include "tensor/dispatch.h"
#include "tensor/ops/adamw_kernels.h"
#include "tensor/profiler.h"

namespace ember {

DType optimizer_state_dtype(DType param) { return param == DType::f64 ? DType::f64 : DType::f32; }

static void check_operand(const Tensor& param, const Tensor& t, const char* what, DType want) {
  EMBER_CHECK(t.defined(), "adamw_update: ", what, " is undefined");
  EMBER_CHECK(t.shape() == param.shape(), "adamw_update: ", what, " has shape ", t.shape_str(),
              ", expected the parameter's ", param.shape_str());
  EMBER_CHECK(t.dtype() == want, "adamw_update: ", what, " has dtype ", dtype_name(t.dtype()), ", expected ",
              dtype_name(want), " for a ", dtype_name(param.dtype()), " parameter");
  EMBER_CHECK(t.device() == param.device(), "adamw_update: ", what, " is on ", t.device().str(),
              ", the parameter on ", param.device().str());
  EMBER_CHECK(t.is_contiguous(), "adamw_update: ", what, " (shape ", t.shape_str(), ") must be contiguous");
}

// Checks one tensor's operands and step; returns its coefficients.
static AdamWCoefficients checked_coefficients(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                                              const Tensor& exp_avg_sq, const AdamWStep& s) {
  EMBER_CHECK(param.defined(), "adamw_update: the parameter is undefined");
  const DType pt = param.dtype();
  EMBER_CHECK(pt == DType::f32 || pt == DType::f64 || pt == DType::bf16 || pt == DType::f16,
              "adamw_update: parameter dtype ", dtype_name(pt), " not supported (expected f32, f64, bf16 or f16)");
  EMBER_CHECK(param.device().is_cuda() || pt == DType::f32 || pt == DType::f64, "adamw_update: a ", dtype_name(pt),
              " parameter is updated on CUDA only (on the CPU: f32 or f64)");
  const DType st = optimizer_state_dtype(pt);
  check_operand(param, param, "the parameter", pt);
  check_operand(param, grad, "grad", pt);
  check_operand(param, exp_avg, "exp_avg", st);
  check_operand(param, exp_avg_sq, "exp_avg_sq", st);
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
  return c;
}

// per element: ~14 flops; reads w, g, m, v and writes w, m, v
static void count_work(const Tensor& param, const Tensor& exp_avg) {
  profile_count(14.0 * static_cast<double>(param.numel()),
                3.0 * static_cast<double>(param.nbytes()) + 4.0 * static_cast<double>(exp_avg.nbytes()));
}

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWStep& s) {
  const AdamWCoefficients c = checked_coefficients(param, grad, exp_avg, exp_avg_sq, s);
  count_work(param, exp_avg);
  if (param.numel() == 0) return;
  dispatch("adamw_update", param.device(),
           [&] { cpu::adamw_update(param, grad, exp_avg, exp_avg_sq, c); },
           [&] { cuda::adamw_update(param, grad, exp_avg, exp_avg_sq, c); });
}

void adamw_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                        const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                        const std::vector<AdamWStep>& steps) {
  const size_t n = params.size();
  EMBER_CHECK(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n && steps.size() == n,
              "adamw_update_multi: ", n, " params but ", grads.size(), " grads, ", exp_avgs.size(), " exp_avgs, ",
              exp_avg_sqs.size(), " exp_avg_sqs and ", steps.size(), " steps (expected one of each per param)");
  std::vector<Tensor> p, g, m, v;
  std::vector<AdamWCoefficients> c;
  for (size_t i = 0; i < n; ++i) {
    const AdamWCoefficients ci = checked_coefficients(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], steps[i]);
    EMBER_CHECK(params[i].device() == params[0].device(), "adamw_update_multi: param ", i, " is on ",
                params[i].device().str(), " but param 0 on ", params[0].device().str(), " (expected one device)");
    count_work(params[i], exp_avgs[i]);
    if (params[i].numel() == 0) continue;
    p.push_back(params[i]);
    g.push_back(grads[i]);
    m.push_back(exp_avgs[i]);
    v.push_back(exp_avg_sqs[i]);
    c.push_back(ci);
  }
  if (p.empty()) return;
  dispatch("adamw_update_multi", p[0].device(),
           [&] {
             for (size_t i = 0; i < p.size(); ++i) cpu::adamw_update(p[i], g[i], m[i], v[i], c[i]);
           },
           [&] { cuda::adamw_update_multi(p, g, m, v, c); });
}

}  // namespace ember
