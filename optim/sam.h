// Sharpness-Aware Minimization (Foret et al. 2021) around any base optimizer, and its adaptive
// variant ASAM (Kwon et al. 2021).
//
// SAM minimizes max_{‖e‖ ≤ ρ} L(w + e) with the first-order worst case
//   e = ρ · g / ‖g‖₂                               (SAM; ‖·‖ over ALL parameters at once)
//   e = ρ · T_w² g / ‖T_w g‖₂,   T_w = |w|          (ASAM: adaptive, scale-invariant)
// (‖·‖₂ + 1e-12 in the denominator, as in the reference implementation.) One SAM step is two
// forward/backward passes:
//
//   loss = forward(x); loss.backward();       // gradient at w
//   sam.first_step();                         // w ← w + e  (the old w is kept)
//   sam.zero_grad(); forward(x).backward();   // gradient at w + e
//   sam.second_step();                        // w ← old w, then base.step() with that gradient
//
// or, with the first backward done, sam.step(closure): it zeroes the gradients after the
// perturbation, and closure() runs the second forward/backward and returns its loss.
//
// The restore copies the kept w back (bit-exact) rather than subtracting e, which in floating
// point would leave w + e − e a rounding away from w after every step.
//
// BatchNorm contract: running statistics must be updated in the FIRST pass only. The second
// forward runs at the perturbed weights and must use the batch statistics for normalization
// without touching the running mean/var (the training loop puts BatchNorm modules in a "frozen
// stats" mode around the closure); otherwise every step would count each batch twice, once at
// weights that are never kept.
#pragma once
#include <functional>

#include "optim/optimizer.h"

namespace ember::optim {

class SAM {
 public:
  // The base optimizer must outlive the SAM object; its parameter groups are the ones perturbed.
  explicit SAM(Optimizer& base, double rho = 0.05, bool adaptive = false);

  void first_step();   // needs gradients at w; throws when no parameter has one
  void second_step();  // needs a first_step before it
  // first_step(); zero_grad(); loss = closure(); second_step(); returns loss.
  double step(const std::function<double()>& closure);
  void zero_grad() { base_.zero_grad(); }

  Optimizer& base() { return base_; }
  double rho() const { return rho_; }
  bool adaptive() const { return adaptive_; }
  double last_grad_norm() const { return grad_norm_; }  // ‖g‖ (or ‖|w| g‖) of the last first_step

 private:
  Optimizer& base_;
  double rho_;
  bool adaptive_;
  double grad_norm_ = 0.0;
  std::vector<std::pair<Variable, Tensor>> saved_;  // (parameter, its weights before the perturbation)
};

}  // namespace ember::optim
