// Fitting a run to a wall-time budget (--time-budget MINUTES).
//
// The recipe's phases are given in epochs, but what a user of two cores has is minutes: the same
// 5.5 epochs take 26 minutes on one two-core VM and 39 on another. With a budget, head and warmup
// stay as given and hold + cooldown are stretched or shrunk by one common factor (keeping their
// ratio) so that the whole process — data, training, every epoch's validation and checkpoints —
// ends within the budget, measured on the run itself:
//
//   remaining = budget − elapsed
//   N = the largest total of iterations with (N − done)·s + (validations still to come)·v ≤ remaining
//
// where s is the measured wall time of one whole-network training iteration (data loading
// included) and v that of one epoch end (validation and checkpoints; estimated from s until one
// has been measured). The trainer plans at the start of every epoch and when the cooldown is
// about to begin; once the cooldown has begun the plan is fixed (the learning rate is then
// decaying along its shape, which a new length would bend). Speed changes after that point
// move the end by their share of the cooldown.
//
// Limits: hold + cooldown never grow past kMaxBudgetScale times their given length (a budget far
// beyond what the schedule asks for does not turn 5 epochs into 500), and never shrink below
// what has already run plus one cooldown iteration (a budget already spent ends the run as soon
// as it can, with a warning, rather than stopping mid-phase).
#pragma once
#include <cstdint>

namespace ember::apps {

constexpr double kMaxBudgetScale = 3.0;

struct BudgetInputs {
  double budget_s = 0;              // the whole run's budget
  double elapsed_s = 0;             // spent so far (process start to now, earlier runs of a resume included)
  int64_t done = 0;                 // iterations done
  double iter_s = 0;                // seconds per whole-network iteration (> 0)
  double epoch_end_s = 0;           // seconds per epoch end: validation + checkpoints (≥ 0)
  int64_t batches_per_epoch = 1;    // iterations per epoch (> 0)
  int64_t head_iters = 0, warmup_iters = 0;
  int64_t given_hold_iters = 0, given_cooldown_iters = 0;  // as the flags set them (sum > 0)
};

struct BudgetPlan {
  int64_t hold_iters = 0, cooldown_iters = 0;
  int64_t total_iters = 0;   // head + warmup + hold + cooldown
  double predicted_s = 0;    // elapsed + what the plan is predicted to take from now
  bool capped = false;       // limited by kMaxBudgetScale
  bool overrun = false;      // the budget cannot be met: the plan ends as soon as it can
};

// Epoch ends (validations) still to come when `done` iterations have run and the run ends at
// `total`: one per epoch boundary after done, and one at the end.
int64_t epoch_ends_ahead(int64_t done, int64_t total, int64_t batches_per_epoch);

// The plan for these measurements (see the file comment). Checks its inputs (an Error names the
// bad one).
BudgetPlan plan_to_budget(const BudgetInputs& in);

}  // namespace ember::apps
