#include "apps/common/time_budget.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace ember::apps {

RecentMean::RecentMean(int64_t window) {
  EMBER_CHECK(window > 0, "RecentMean: window ", window, " is not positive");
  ring_.resize(static_cast<size_t>(window));
}

void RecentMean::add(double v) {
  ring_[next_] = v;
  next_ = (next_ + 1) % ring_.size();
  filled_ = std::min(filled_ + 1, ring_.size());
}

double RecentMean::mean() const {
  if (filled_ == 0) return 0;
  double sum = 0;
  for (size_t i = 0; i < filled_; ++i) sum += ring_[i];  // the filled slots, whichever they are
  return sum / static_cast<double>(filled_);
}

int64_t epoch_ends_ahead(int64_t done, int64_t total, int64_t batches_per_epoch) {
  if (total <= done) return 0;
  const int64_t b = batches_per_epoch;
  return (total + b - 1) / b - done / b;
}

BudgetPlan plan_to_budget(const BudgetInputs& in) {
  auto finite_at_least = [](double v, double lo) { return std::isfinite(v) && v >= lo; };
  EMBER_CHECK(finite_at_least(in.budget_s, 0) && in.budget_s > 0, "time budget: ", in.budget_s,
              " s is not a positive number of seconds");
  EMBER_CHECK(finite_at_least(in.elapsed_s, 0), "time budget: elapsed time ", in.elapsed_s, " s is not >= 0");
  EMBER_CHECK(finite_at_least(in.iter_s, 0) && in.iter_s > 0, "time budget: seconds per iteration ", in.iter_s,
              " is not positive");
  EMBER_CHECK(finite_at_least(in.epoch_end_s, 0), "time budget: seconds per epoch end ", in.epoch_end_s,
              " is not >= 0");
  EMBER_CHECK(in.batches_per_epoch > 0, "time budget: ", in.batches_per_epoch, " batches per epoch");
  EMBER_CHECK(in.done >= 0 && in.head_iters >= 0 && in.warmup_iters >= 0 && in.given_hold_iters >= 0 &&
                  in.given_cooldown_iters >= 0,
              "time budget: negative iteration count");
  const int64_t given = in.given_hold_iters + in.given_cooldown_iters;
  EMBER_CHECK(given > 0, "time budget: hold and cooldown are both 0 iterations, so there is nothing to scale");
  const bool cooling = in.hold_fixed_iters >= 0;  // the cooldown has begun: only its length is planned
  EMBER_CHECK(!cooling || in.given_cooldown_iters > 0,
              "time budget: a cooldown under way, but the given cooldown is 0 iterations");
  EMBER_CHECK(!cooling || in.done >= in.head_iters + in.warmup_iters + in.hold_fixed_iters,
              "time budget: the cooldown has begun after a hold of ", in.hold_fixed_iters, " iterations, but only ",
              in.done, " iterations have run");

  const int64_t fixed = in.head_iters + in.warmup_iters;  // head and warmup stay as given
  const int64_t held = std::max<int64_t>(0, in.done - fixed);  // hold iterations already run
  // The earliest end: what has run, then one cooldown iteration (a run without a cooldown: at
  // least one hold iteration).
  const int64_t min_total =
      in.given_cooldown_iters > 0 ? std::max(in.done, fixed) + 1 : std::max(in.done, fixed + 1);
  // (in a cooldown under way that is done + 1)
  const int64_t max_total =
      std::max(min_total, fixed + static_cast<int64_t>(std::floor(kMaxBudgetScale * static_cast<double>(given))));
  auto cost = [&](int64_t total) {
    return static_cast<double>(total - in.done) * in.iter_s +
           static_cast<double>(epoch_ends_ahead(in.done, total, in.batches_per_epoch)) * in.epoch_end_s;
  };
  const double remaining = in.budget_s - in.elapsed_s;

  BudgetPlan p;
  int64_t total = min_total;
  if (cost(min_total) > remaining) {
    p.overrun = true;
  } else {  // the largest total in [min_total, max_total] that fits (cost grows with the total)
    int64_t lo = min_total, hi = max_total;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (cost(mid) <= remaining) lo = mid;
      else hi = mid - 1;
    }
    total = lo;
    p.capped = total == max_total && cost(max_total + 1) <= remaining;
  }

  const int64_t span = total - fixed;  // hold + cooldown
  int64_t hold = std::llround(static_cast<double>(span) * static_cast<double>(in.given_hold_iters) /
                              static_cast<double>(given));
  if (in.given_cooldown_iters > 0) hold = std::min(hold, span - 1);  // at least one cooldown iteration
  hold = std::max(hold, held);                                        // what has run stays run
  if (cooling) hold = in.hold_fixed_iters;                            // the hold is over
  p.hold_iters = hold;
  p.cooldown_iters = span - hold;
  p.total_iters = total;
  p.predicted_s = in.elapsed_s + cost(total);
  return p;
}

}  // namespace ember::apps
