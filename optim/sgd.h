// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay: PyTorch's
// torch.optim.SGD update, with the fused kernel of tensor/ops/sgd.h:
//   d ← g + wd·w;  b ← d (first step) or μ·b + (1 − dampening)·d;  d ← d + μ·b (Nesterov) or b;
//   w ← w − lr·d
#pragma once
#include "optim/optimizer.h"

namespace ember::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // used by the params constructor; groups carry their own
  bool nesterov = false;
  // true: every parameter in one sgd_update_multi call (on CUDA one launch per parameter dtype);
  // false: sgd_update per parameter. Equal results.
  bool multi_tensor = true;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  SGD(std::vector<Variable> params, SGDOptions options);  // one group, weight_decay from options
  void step() override;
  const SGDOptions& options() const { return options_; }

 protected:
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }

 private:
  SGDOptions options_;
};

}  // namespace ember::optim
