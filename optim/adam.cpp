#include "optim/adam.h"

#include "tensor/ops/adamw.h"

namespace ember::optim {

static std::vector<ParamGroup> one_group(std::vector<Variable> params, double weight_decay) {
  return {ParamGroup{"all", std::move(params), {}, weight_decay, -1.0, 1.0}};
}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled)
    : Optimizer(std::move(groups), options.lr), options_(options), decoupled_(decoupled) {
  EMBER_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
              decoupled ? "AdamW" : "Adam", ": betas (", options.beta1, ", ", options.beta2, ") must lie in [0, 1)");
  EMBER_CHECK(options.eps >= 0, decoupled ? "AdamW" : "Adam", ": eps ", options.eps, " must be >= 0");
}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}
Adam::Adam(std::vector<Variable> params, AdamOptions options)
    : Adam(one_group(std::move(params), options.weight_decay), options, false) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, true) {}
AdamW::AdamW(std::vector<Variable> params, AdamOptions options)
    : Adam(one_group(std::move(params), options.weight_decay), options, true) {}

void Adam::step() {
  std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs;
  std::vector<AdamWStep> steps;
  std::vector<ParamState*> states;
  for_each_param_with_grad([&](ParamGroup& group, Variable& p, const Tensor& grad, ParamState& state) {
    for (const char* name : {"exp_avg", "exp_avg_sq"})
      if (!state.buffers.count(name)) state.buffers[name] = zeros_for(p);
    AdamWStep s;
    s.lr = group.lr;
    s.beta1 = options_.beta1;
    s.beta2 = options_.beta2;
    s.eps = options_.eps;
    s.weight_decay = group.weight_decay;
    s.step = state.step + 1;
    s.decoupled = decoupled_;
    if (!options_.multi_tensor) {
      adamw_update(p.data(), grad, state.buffers["exp_avg"], state.buffers["exp_avg_sq"], s);
      state.step = s.step;
      return;
    }
    params.push_back(p.data());
    grads.push_back(grad);
    exp_avgs.push_back(state.buffers["exp_avg"]);
    exp_avg_sqs.push_back(state.buffers["exp_avg_sq"]);
    steps.push_back(s);
    states.push_back(&state);
  });
  if (params.empty()) return;
  adamw_update_multi(params, grads, exp_avgs, exp_avg_sqs, steps);
  for (size_t i = 0; i < states.size(); ++i) states[i]->step = steps[i].step;  // after the update succeeded
}

}  // namespace ember::optim
