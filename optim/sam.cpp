#include "optim/sam.h"

#include <cmath>

#include "tensor/ops/binary.h"
#include "tensor/ops/reduce.h"

namespace ember::optim {

SAM::SAM(Optimizer& base, double rho, bool adaptive) : base_(base), rho_(rho), adaptive_(adaptive) {
  EMBER_CHECK(rho > 0, "SAM: rho ", rho, " must be > 0");
}

void SAM::first_step() {
  EMBER_CHECK(saved_.empty(), "SAM::first_step: called twice without a second_step in between");
  std::vector<Variable> params;
  for (ParamGroup& group : base_.param_groups())
    for (Variable& p : group.params)
      if (p.requires_grad() && p.grad().defined()) params.push_back(p);
  EMBER_CHECK(!params.empty(), "SAM::first_step: no parameter has a gradient (run backward first)");

  // ‖g‖ or ‖|w|·g‖ over all parameters, accumulated in double.
  double sum_sq = 0.0;
  for (const Variable& p : params) {
    Tensor t = adaptive_ ? mul(p.data(), p.grad()) : p.grad();
    if (t.dtype() != DType::f64) t = t.to(DType::f64);
    sum_sq += sum(mul(t, t)).item();
  }
  grad_norm_ = std::sqrt(sum_sq);
  const double scale = rho_ / (grad_norm_ + 1e-12);

  for (Variable& p : params) {
    Tensor& w = p.data();
    Tensor e = adaptive_ ? mul(mul(mul(w, w), p.grad()), scale) : mul(p.grad(), scale);
    saved_.emplace_back(p, w.clone());
    add_(w, e);
  }
}

void SAM::second_step() {
  EMBER_CHECK(!saved_.empty(), "SAM::second_step: no first_step to undo");
  for (auto& [p, old] : saved_) p.data().copy_(old);
  saved_.clear();
  base_.step();
}

double SAM::step(const std::function<double()>& closure) {
  EMBER_CHECK(closure != nullptr, "SAM::step: the closure is empty");
  first_step();
  zero_grad();
  double loss;
  try {
    loss = closure();
  } catch (...) {  // leave the weights as they were before the perturbation
    for (auto& [p, old] : saved_) p.data().copy_(old);
    saved_.clear();
    throw;
  }
  second_step();
  return loss;
}

}  // namespace ember::optim
