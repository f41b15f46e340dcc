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
// included; the mean over the last quarter epoch, so that a machine that slows down is planned
// at its present speed) and v that of one epoch end (validation and checkpoints; estimated from
// s until one has been measured).
//
// When: at the start of every epoch, when the cooldown is about to begin, and every quarter
// epoch during the cooldown. Before the cooldown, hold and cooldown are scaled together. Once
// the cooldown has begun the hold is what it was, and only the cooldown's length changes: the
// learning rate goes on from where it is, along the same curve, over the new remaining length
// (a knot in the schedule, optim/schedule.h), so a run whose machine slows or speeds up halfway
// through its cooldown still ends on its budget and still ends its decay at the final rate.
//
// Limits: hold + cooldown never grow past kMaxBudgetScale times their given length (a budget far
// beyond what the schedule asks for does not turn 5 epochs into 500), and never shrink below
// what has already run plus one cooldown iteration (a budget already spent ends the run as soon
// as it can, with a warning, rather than stopping mid-phase).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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
  int64_t hold_fixed_iters = -1;    // >= 0 once the cooldown has begun: the hold ran this long
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

// The mean of the last `window` values added (of all of them while there are fewer): the
// present speed of a machine whose speed drifts.
class RecentMean {
 public:
  explicit RecentMean(int64_t window);
  void add(double v);
  double mean() const;  // 0 when nothing was added
  int64_t count() const { return static_cast<int64_t>(filled_); }

 private:
  std::vector<double> ring_;
  std::size_t next_ = 0, filled_ = 0;
};

// The plan for these measurements (see the file comment). Checks its inputs (an Error names the
// bad one).
BudgetPlan plan_to_budget(const BudgetInputs& in);

}  // namespace ember::apps
