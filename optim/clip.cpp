#include "optim/clip.h"

#include "tensor/ops/grad_norm.h"
#include "tensor/ops/unary.h"

namespace ember::optim {

namespace {
std::vector<Tensor> gradients(const std::vector<Variable>& params) {
  std::vector<Tensor> grads;
  for (const Variable& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());  // shares the gradient's storage
  return grads;
}
}  // namespace

Tensor grad_norm_on_device(const std::vector<Variable>& params) {
  return unary(UnaryOp::sqrt, sum_of_squares(gradients(params)));
}

Tensor clip_grad_norm_on_device(const std::vector<Variable>& params, double max_norm) {
  EMBER_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be > 0");
  const std::vector<Tensor> grads = gradients(params);
  Tensor sum_sq = sum_of_squares(grads);
  clip_by_norm_(grads, sum_sq, max_norm);
  return unary(UnaryOp::sqrt, sum_sq);
}

double grad_norm(const std::vector<Variable>& params) { return grad_norm_on_device(params).item(); }

double clip_grad_norm(const std::vector<Variable>& params, double max_norm) {
  return clip_grad_norm_on_device(params, max_norm).item();
}

}  // namespace ember::optim
