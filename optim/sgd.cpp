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
      buffer = s.first_step ? (state.buffers["momentum_buffer"] = empty(p.shape(), p.dtype(), p.device()))
                            : it->second;
    }
    sgd_update(p.data(), grad, buffer, s);
    ++state.step;
  });
}

}  // namespace ember::optim
