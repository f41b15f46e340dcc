// Exponential moving average of a module's weights (Polyak averaging, as timm's ModelEma):
//
//   shadow ← decay · shadow + (1 − decay) · current      for floating parameters and buffers
//   shadow ← current                                      for integer buffers (step counters)
//
// Evaluate with the averaged weights by swapping them in and out:
//   ema.store(); ema.copy_to(model); evaluate(model); ema.restore();
// Build the EMA after the model is on its device and dtype (the shadow is a copy made then).
#pragma once
#include "nn/module.h"

namespace ember::optim {

class EMA {
 public:
  // The module must outlive the EMA. The shadow starts as a copy of the module's weights.
  EMA(nn::Module& module, double decay);

  void update();  // one averaging step from the module's current weights
  void copy_to(nn::Module& module) const;  // loads the shadow (strict: same names and shapes)
  void store();    // keeps a copy of the module's current weights
  void restore();  // puts the stored copy back (throws without a store)

  double decay() const { return decay_; }
  void set_decay(double decay);
  int64_t num_updates() const { return num_updates_; }
  // The averaged weights by state-dict name (save them with save_safetensors; load with
  // load_state_dict).
  const nn::StateDict& shadow() const { return shadow_; }
  void load_state_dict(const nn::StateDict& dict);

 private:
  nn::Module& module_;
  double decay_;
  int64_t num_updates_ = 0;
  nn::StateDict shadow_;
  nn::StateDict stored_;
};

}  // namespace ember::optim
