#include "tensor/ops/sgd.h"

#include "tensor/dispatch.h"
#include "tensor/ops/adamw.h"
#include "tensor/ops/sgd_kernels.h"
#include "tensor/profiler.h"

namespace ember {

static void check_operand(const Tensor& param, const Tensor& t, const char* what, DType want) {
  EMBER_CHECK(t.defined(), "sgd_update: ", what, " is undefined");
  EMBER_CHECK(t.shape() == param.shape(), "sgd_update: ", what, " has shape ", t.shape_str(),
              ", expected the parameter's ", param.shape_str());
  EMBER_CHECK(t.dtype() == want, "sgd_update: ", what, " has dtype ", dtype_name(t.dtype()), ", expected ",
              dtype_name(want), " for a ", dtype_name(param.dtype()), " parameter");
  EMBER_CHECK(t.device() == param.device(), "sgd_update: ", what, " is on ", t.device().str(),
              ", the parameter on ", param.device().str());
  EMBER_CHECK(t.is_contiguous(), "sgd_update: ", what, " (shape ", t.shape_str(), ") must be contiguous");
}

static void check_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s) {
  EMBER_CHECK(param.defined(), "sgd_update: the parameter is undefined");
  const DType pt = param.dtype();
  EMBER_CHECK(pt == DType::f32 || pt == DType::f64 || pt == DType::bf16 || pt == DType::f16,
              "sgd_update: parameter dtype ", dtype_name(pt), " not supported (expected f32, f64, bf16 or f16)");
  EMBER_CHECK(param.device().is_cuda() || pt == DType::f32 || pt == DType::f64, "sgd_update: a ", dtype_name(pt),
              " parameter is updated on CUDA only (on the CPU: f32 or f64)");
  check_operand(param, param, "the parameter", pt);
  check_operand(param, grad, "grad", pt);
  if (s.momentum != 0.0) check_operand(param, momentum_buffer, "momentum_buffer", optimizer_state_dtype(pt));
  EMBER_CHECK(s.lr >= 0 && s.momentum >= 0 && s.weight_decay >= 0, "sgd_update: lr ", s.lr, ", momentum ",
              s.momentum, " and weight_decay ", s.weight_decay, " must be >= 0");
  EMBER_CHECK(!s.nesterov || (s.momentum > 0 && s.dampening == 0), "sgd_update: Nesterov momentum needs momentum > 0 "
              "and dampening 0 (got momentum ", s.momentum, ", dampening ", s.dampening, ")");
  const double elem = static_cast<double>(param.numel());
  const double bytes = 3.0 * static_cast<double>(param.nbytes()) +
                       (s.momentum != 0.0 ? 2.0 * static_cast<double>(momentum_buffer.nbytes()) : 0.0);
  profile_count(6.0 * elem, bytes);  // w, g (, b) read; w (, b) written
}

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDStep& s) {
  check_step(param, grad, momentum_buffer, s);
  if (param.numel() == 0) return;
  dispatch("sgd_update", param.device(),
           [&] { cpu::sgd_update(param, grad, momentum_buffer, s); },
           [&] { cuda::sgd_update(param, grad, momentum_buffer, s); });
}

void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_buffers, const std::vector<SGDStep>& steps) {
  const size_t n = params.size();
  EMBER_CHECK(grads.size() == n && momentum_buffers.size() == n && steps.size() == n, "sgd_update_multi: ", n,
              " params but ", grads.size(), " grads, ", momentum_buffers.size(), " momentum_buffers and ",
              steps.size(), " steps (expected one of each per param)");
  std::vector<Tensor> p, g, b;
  std::vector<SGDStep> st;
  for (size_t i = 0; i < n; ++i) {
    check_step(params[i], grads[i], momentum_buffers[i], steps[i]);
    EMBER_CHECK(params[i].device() == params[0].device(), "sgd_update_multi: param ", i, " is on ",
                params[i].device().str(), " but param 0 on ", params[0].device().str(), " (expected one device)");
    if (params[i].numel() == 0) continue;
    p.push_back(params[i]);
    g.push_back(grads[i]);
    b.push_back(momentum_buffers[i]);
    st.push_back(steps[i]);
  }
  if (p.empty()) return;
  dispatch("sgd_update_multi", p[0].device(),
           [&] {
             for (size_t i = 0; i < p.size(); ++i) cpu::sgd_update(p[i], g[i], b[i], st[i]);
           },
           [&] { cuda::sgd_update_multi(p, g, b, st); });
}

}  // namespace ember
