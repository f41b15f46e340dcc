#include "optim/sgd.h"

#include "tensor/ops/sgd.h"

namespace ember::optim {

static void check_options(const SGDOptions& o) {
  EMBER_CHECK(o.momentum >= 0, "SGD: momentum ", o.momentum, " must be >= 0");
  EMBER_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
              "SGD: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ", o.momentum, ", dampening ",
              o.dampening, ")");
}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options) : Optimizer(std::move(groups), options.lr), options_(options) {
  check_options(options_);
}

SGD::SGD(std::vector<Variable> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{"all", std::move(params), {}, options.weight_decay, -1.0, 1.0}},
          options) {}

void SGD::step() {
  std::vector<Tensor> params, grads, buffers;
  std::vector<SGDStep> steps;
  std::vector<ParamState*> states;
  for_each_param_with_grad([&](ParamGroup& group, Variable& p, const Tensor& grad, ParamState& state) {
    SGDStep s;
    s.lr = group.lr;
    s.momentum = options_.momentum;
    s.dampening = options_.dampening;
    s.weight_decay = group.weight_decay;
    s.nesterov = options_.nesterov;
    Tensor buffer;
    if (s.momentum != 0.0) {
      auto it = state.buffers.find("momentum_buffer");
      s.first_step = it == state.buffers.end();
      buffer = s.first_step ? (state.buffers["momentum_buffer"] = empty(p.shape(), state_dtype(p), p.device()))
                            : it->second;
    }
    if (!options_.multi_tensor) {
      sgd_update(p.data(), grad, buffer, s);
      ++state.step;
      return;
    }
    params.push_back(p.data());
    grads.push_back(grad);
    buffers.push_back(buffer);
    steps.push_back(s);
    states.push_back(&state);
  });
  if (params.empty()) return;
  sgd_update_multi(params, grads, buffers, steps);
  for (ParamState* state : states) ++state->step;
}

}  // namespace ember::optim
