// Learning-rate schedules, evaluated per iteration (it = 0, 1, 2, ...):
//   optimizer.set_lr(schedule.lr(it));
//
// Each schedule is a run of phases. A phase of n iterations starting at iteration b goes from
// its start value to its end value with progress p = (it − b) / n: it takes the start value
// exactly on its first iteration and reaches the end value on the first iteration of the next
// phase (its own last iteration is one step short of it). Past the last phase the last phase's
// end value holds.
//   linear:  start + (end − start)·p          cosine:  end + (start − end)·½(1 + cos πp)
//
// PhaseSchedule, the fine-tuning recipe:
//   head      [0, H)           head_lr, constant (the backbone is frozen: the loop's job)
//   warmup    [H, H+W)         warmup_start → peak_lr, linear
//   hold      [H+W, H+W+P)     peak_lr
//   cooldown  [H+W+P, total)   peak_lr → final_lr, linear or cosine
// Any phase may have 0 iterations; phase(it) names the one `it` falls in. A cooldown with a knot
// (cooldown_knot_iters K > 0, cooldown_knot_progress q) is two phases named "cooldown": its first
// K iterations cover the curve's progress [0, q] evenly and the rest cover [q, 1] evenly. The
// time budget sets the knot where it re-plans a cooldown under way (apps/common/time_budget.h):
// the learning rate goes on from where it is, along the same curve, over the new remaining length.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::optim {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double lr(int64_t it) const = 0;
};

enum class Anneal { linear, cosine };

// A sequence of phases (the machinery under the schedules below, usable directly).
class PiecewiseSchedule : public Schedule {
 public:
  struct Phase {
    std::string name;
    int64_t iters;
    double start, end;
    Anneal shape = Anneal::linear;
    double from = 0.0, to = 1.0;  // the part of the shape's progress this phase covers
  };
  explicit PiecewiseSchedule(std::vector<Phase> phases);  // empty (0-iteration) phases are allowed
  double lr(int64_t it) const override;
  std::string phase(int64_t it) const;  // past the end: the last non-empty phase's name
  // Where `it` is along its phase's curve: from + (to − from)·(it − begin)/iters (past the end: 1).
  double progress(int64_t it) const;
  int64_t phase_begin(const std::string& name) const;  // first iteration of the named phase
  int64_t total_iters() const { return total_; }

 private:
  const Phase& find(int64_t it, int64_t& begin) const;
  std::vector<Phase> phases_;
  int64_t total_ = 0;
};

struct PhaseScheduleConfig {
  int64_t head_iters = 0;
  double head_lr = 0.0;
  int64_t warmup_iters = 0;
  double warmup_start = 0.0;
  double peak_lr = 1e-3;
  int64_t hold_iters = 0;
  int64_t cooldown_iters = 0;
  double final_lr = 0.0;
  Anneal cooldown = Anneal::cosine;
  int64_t cooldown_knot_iters = 0;    // 0: no knot; else in [1, cooldown_iters)
  double cooldown_knot_progress = 0;  // the curve's progress at the knot, in [0, 1)
};

class PhaseSchedule : public PiecewiseSchedule {
 public:
  explicit PhaseSchedule(const PhaseScheduleConfig& config);
  const PhaseScheduleConfig& config() const { return config_; }

 private:
  PhaseScheduleConfig config_;
};

// Linear warmup from warmup_start to base_lr over warmup_iters ("warmup"), then a cosine from
// base_lr to min_lr over the remaining total_iters − warmup_iters ("cosine").
class CosineSchedule : public PiecewiseSchedule {
 public:
  CosineSchedule(double base_lr, int64_t total_iters, int64_t warmup_iters = 0, double warmup_start = 0.0,
                 double min_lr = 0.0);
};

// base_lr · gamma^k, k = how many milestones are <= it (step_size: milestones every step_size).
class StepSchedule : public Schedule {
 public:
  StepSchedule(double base_lr, std::vector<int64_t> milestones, double gamma = 0.1);
  StepSchedule(double base_lr, int64_t step_size, double gamma = 0.1);
  double lr(int64_t it) const override;

 private:
  double base_lr_, gamma_;
  std::vector<int64_t> milestones_;  // sorted; empty with step_size_ > 0
  int64_t step_size_ = 0;
};

}  // namespace ember::optim
