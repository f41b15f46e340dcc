#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/error.h"

namespace ember::optim {

PiecewiseSchedule::PiecewiseSchedule(std::vector<Phase> phases) : phases_(std::move(phases)) {
  for (const Phase& p : phases_) {
    EMBER_CHECK(p.iters >= 0, "schedule: phase '", p.name, "' has ", p.iters, " iterations (expected >= 0)");
    EMBER_CHECK(std::isfinite(p.start) && std::isfinite(p.end) && p.start >= 0 && p.end >= 0, "schedule: phase '",
                p.name, "' goes from ", p.start, " to ", p.end, " (learning rates must be finite and >= 0)");
    EMBER_CHECK(std::isfinite(p.from) && std::isfinite(p.to) && 0 <= p.from && p.from <= p.to && p.to <= 1,
                "schedule: phase '", p.name, "' covers its shape from ", p.from, " to ", p.to,
                " (expected 0 <= from <= to <= 1)");
    total_ += p.iters;
  }
  EMBER_CHECK(total_ > 0, "schedule: every phase is empty (0 iterations in all)");
}

const PiecewiseSchedule::Phase& PiecewiseSchedule::find(int64_t it, int64_t& begin) const {
  EMBER_CHECK(it >= 0, "schedule: iteration ", it, " is negative");
  begin = 0;
  const Phase* last = nullptr;
  for (const Phase& p : phases_) {
    if (p.iters == 0) continue;
    if (it < begin + p.iters) return p;
    begin += p.iters;
    last = &p;
  }
  begin = -1;  // past the end
  return *last;
}

// Where `it` is along phase p's curve, p beginning at iteration `begin`.
static double progress_in(const PiecewiseSchedule::Phase& p, int64_t begin, int64_t it) {
  return p.from + (p.to - p.from) * (static_cast<double>(it - begin) / static_cast<double>(p.iters));
}

double PiecewiseSchedule::progress(int64_t it) const {
  int64_t begin;
  const Phase& p = find(it, begin);
  return begin < 0 ? 1.0 : progress_in(p, begin, it);
}

double PiecewiseSchedule::lr(int64_t it) const {
  int64_t begin;
  const Phase& p = find(it, begin);
  if (begin < 0) return p.end;
  const double progress = progress_in(p, begin, it);
  if (p.shape == Anneal::linear) return p.start + (p.end - p.start) * progress;
  return p.end + (p.start - p.end) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

std::string PiecewiseSchedule::phase(int64_t it) const {
  int64_t begin;
  return find(it, begin).name;
}

int64_t PiecewiseSchedule::phase_begin(const std::string& name) const {
  int64_t begin = 0;
  for (const Phase& p : phases_) {
    if (p.name == name) return begin;
    begin += p.iters;
  }
  throw make_error("schedule: no phase named '", name, "'");
}

static std::vector<PiecewiseSchedule::Phase> recipe_phases(const PhaseScheduleConfig& c) {
  std::vector<PiecewiseSchedule::Phase> phases = {
      {"head", c.head_iters, c.head_lr, c.head_lr, Anneal::linear},
      {"warmup", c.warmup_iters, c.warmup_start, c.peak_lr, Anneal::linear},
      {"hold", c.hold_iters, c.peak_lr, c.peak_lr, Anneal::linear}};
  const int64_t k = c.cooldown_knot_iters;
  const double q = c.cooldown_knot_progress;
  if (k == 0) {
    phases.push_back({"cooldown", c.cooldown_iters, c.peak_lr, c.final_lr, c.cooldown});
  } else {
    EMBER_CHECK(k > 0 && k < c.cooldown_iters, "schedule: the cooldown's knot at iteration ", k,
                " is not inside its ", c.cooldown_iters, " iterations");
    EMBER_CHECK(std::isfinite(q) && q >= 0 && q < 1, "schedule: the cooldown's progress at its knot is ", q,
                " (expected 0 <= q < 1)");
    phases.push_back({"cooldown", k, c.peak_lr, c.final_lr, c.cooldown, 0.0, q});
    phases.push_back({"cooldown", c.cooldown_iters - k, c.peak_lr, c.final_lr, c.cooldown, q, 1.0});
  }
  return phases;
}

PhaseSchedule::PhaseSchedule(const PhaseScheduleConfig& config)
    : PiecewiseSchedule(recipe_phases(config)), config_(config) {}

CosineSchedule::CosineSchedule(double base_lr, int64_t total_iters, int64_t warmup_iters, double warmup_start,
                               double min_lr)
    : PiecewiseSchedule({{"warmup", warmup_iters, warmup_start, base_lr, Anneal::linear},
                         {"cosine", total_iters - warmup_iters, base_lr, min_lr, Anneal::cosine}}) {
  EMBER_CHECK(warmup_iters <= total_iters, "CosineSchedule: warmup_iters ", warmup_iters, " exceeds total_iters ",
              total_iters);
}

StepSchedule::StepSchedule(double base_lr, std::vector<int64_t> milestones, double gamma)
    : base_lr_(base_lr), gamma_(gamma), milestones_(std::move(milestones)) {
  EMBER_CHECK(base_lr >= 0 && gamma > 0, "StepSchedule: base_lr ", base_lr, " must be >= 0 and gamma ", gamma,
              " > 0");
  std::sort(milestones_.begin(), milestones_.end());
}

StepSchedule::StepSchedule(double base_lr, int64_t step_size, double gamma)
    : base_lr_(base_lr), gamma_(gamma), step_size_(step_size) {
  EMBER_CHECK(base_lr >= 0 && gamma > 0, "StepSchedule: base_lr ", base_lr, " must be >= 0 and gamma ", gamma,
              " > 0");
  EMBER_CHECK(step_size > 0, "StepSchedule: step_size ", step_size, " must be > 0");
}

double StepSchedule::lr(int64_t it) const {
  EMBER_CHECK(it >= 0, "StepSchedule: iteration ", it, " is negative");
  int64_t k = step_size_ > 0 ? it / step_size_
                             : std::upper_bound(milestones_.begin(), milestones_.end(), it) - milestones_.begin();
  return base_lr_ * std::pow(gamma_, static_cast<double>(k));
}

}  // namespace ember::optim
