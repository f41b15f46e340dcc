// Fitting ensemble weights: the convex combination of the members' probabilities with the least
// log loss on labelled (validation) rows.
//
// With K members, N labelled rows, p_ik = member k's probability of row i's true label (clipped
// to [1e-15, 1]) and weights w on the simplex Δ = {w_k >= 0, Σ_k w_k = 1}, the mixture assigns
// the true label q_i(w) = Σ_k w_k p_ik and
//
//   L(w)        = −(1/N) Σ_i ln q_i(w)                  (the ensemble's log loss)
//   ∂L/∂w_k     = −(1/N) Σ_i p_ik / q_i
//   ∂²L/∂w_k∂w_l = (1/N) Σ_i p_ik p_il / q_i²            (positive semi-definite: L is convex)
//
// Since Σ_k w_k ∂L/∂w_k = −1 on Δ, w is optimal exactly when every ∂L/∂w_k >= −1, with equality
// where w_k > 0. The Frank-Wolfe gap  G(w) = wᵀ∇L − min_k ∂L/∂w_k >= L(w) − min_Δ L  bounds
// how far from the optimum a w is, and is the stopping test.
//
// The method (float64, deterministic): start from equal weights; each iteration either takes a
// Newton step on the current support {k : w_k > 0} (the equality-constrained step
// [H 1; 1ᵀ 0][d; ν] = [−g; 0], a tiny ridge for members that agree exactly, an Armijo
// backtracking line search, a weight that reaches 0 leaves the support), or, when the steepest
// coordinate k = argmin_k ∂L/∂w_k lies outside the support, a Frank-Wolfe step towards the
// vertex e_k with an exact line search (bisection on the directional derivative), which brings
// k in. Near the optimum the Newton steps converge quadratically.
#pragma once
#include <string>
#include <vector>

#include "apps/common/predictions.h"

namespace ember::apps {

struct EnsembleFit {
  std::vector<double> weights;  // one per member, >= 0, summing to 1
  double log_loss = 0;          // L(weights) on the fitting rows
  double gap = 0;               // L(weights) − optimum <= gap
  int iterations = 0;
  bool converged = false;       // gap <= tolerance (else: the iteration limit or round-off stopped it)
};

// Weights minimising the log loss of Σ_k w_k P_k. Every member must list the same files in the
// same order (see align_rows), all with a known label that agrees across members.
EnsembleFit fit_ensemble_weights(const std::vector<Predictions>& members, double tolerance = 1e-12,
                                 int max_iterations = 500);

// The members with their rows reordered to the first member's order, matching rows by file name.
// Throws an Error naming the files (`sources`, else "member k") when a member has a different
// class count, a file the first lacks or lists twice, or a different label for the same file.
std::vector<Predictions> align_rows(const std::vector<Predictions>& members,
                                    const std::vector<std::string>& sources = {});

}  // namespace ember::apps
