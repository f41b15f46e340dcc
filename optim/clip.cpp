#include "optim/clip.h"

#include <cmath>

#include "tensor/ops/binary.h"
#include "tensor/ops/reduce.h"

namespace ember::optim {

double grad_norm(const std::vector<Variable>& params) {
  double sum_sq = 0.0;
  for (const Variable& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    const Tensor& g = p.grad();
    Tensor g64 = g.dtype() == DType::f64 ? g : g.to(DType::f64);  // square and sum in double
    sum_sq += sum(mul(g64, g64)).item();
  }
  return std::sqrt(sum_sq);
}

double clip_grad_norm(const std::vector<Variable>& params, double max_norm) {
  EMBER_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be > 0");
  const double total = grad_norm(params);
  if (!std::isfinite(total)) return total;
  const double coef = max_norm / (total + 1e-6);
  if (coef >= 1.0) return total;
  for (const Variable& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor g = p.grad();  // shares storage with the parameter's gradient
    mul_(g, coef);
  }
  return total;
}

}  // namespace ember::optim
