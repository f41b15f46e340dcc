// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), matching PyTorch's
// torch.optim.Adam / AdamW (amsgrad off) through the fused kernel of tensor/ops/adamw.h:
//   AdamW: w ← w·(1 − lr·wd)      Adam: g ← g + wd·w
//   m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  t ← t + 1
//   w ← w − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
// State per parameter: step t, "exp_avg" (m), "exp_avg_sq" (v), in f32 for bf16/f16 parameters.
#pragma once
#include "optim/optimizer.h"

namespace ember::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // used by the params constructor; groups carry their own
  // true: every parameter in one adamw_update_multi call (on CUDA one launch per parameter
  // dtype); false: adamw_update per parameter. Equal results.
  bool multi_tensor = true;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions options);
  Adam(std::vector<Variable> params, AdamOptions options);  // one group, weight_decay from options
  void step() override;
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled);
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  AdamOptions options_;
  bool decoupled_;
};

// Decoupled weight decay. PyTorch's AdamW defaults to weight_decay 0.01; here the group's (or
// the options') value is used as given.
class AdamW : public Adam {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamOptions options);
  AdamW(std::vector<Variable> params, AdamOptions options);
};

}  // namespace ember::optim
