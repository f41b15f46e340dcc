// --time-budget: the planner against a brute-force search on random inputs, its limits, and the
// trainer following a plan end to end (the plans there are forced by the cap or by a budget
// already spent, so they do not depend on this machine's speed).

#include "apps/common/time_budget.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "nn/safetensors.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using ember::apps::BudgetInputs;
using ember::apps::BudgetPlan;
using ember::apps::plan_to_budget;

namespace {

// Seconds from `done` to `total` iterations, walking them one by one: every iteration costs
// iter_s, and an epoch ends after every multiple of the epoch length and after the last.
double walk_cost(const BudgetInputs& in, int64_t total) {
  double s = 0;
  for (int64_t i = in.done + 1; i <= total; ++i) {
    s += in.iter_s;
    if (i % in.batches_per_epoch == 0 || i == total) s += in.epoch_end_s;
  }
  return s;
}

// The largest total that fits, found by trying every one from the largest allowed down.
int64_t brute_force_total(const BudgetInputs& in, bool* overrun) {
  const int64_t fixed = in.head_iters + in.warmup_iters;
  const int64_t lo = in.given_cooldown_iters > 0 ? std::max(in.done, fixed) + 1 : std::max(in.done, fixed + 1);
  const int64_t hi = std::max(
      lo, fixed + static_cast<int64_t>(std::floor(ember::apps::kMaxBudgetScale *
                                                  static_cast<double>(in.given_hold_iters + in.given_cooldown_iters))));
  for (int64_t t = hi; t >= lo; --t)
    if (in.elapsed_s + walk_cost(in, t) <= in.budget_s) {
      *overrun = false;
      return t;
    }
  *overrun = true;
  return lo;
}

}  // namespace

TEST(TimeBudget, PlansTheLargestRunThatFitsOnRandomInputs) {
  std::mt19937_64 rng(11);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int64_t a, int64_t b) { return std::uniform_int_distribution<int64_t>(a, b)(rng); };
  int overruns = 0, capped = 0, fitted = 0, cooled = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    BudgetInputs in;
    in.batches_per_epoch = pick(1, 40);
    in.head_iters = pick(0, 30);
    in.warmup_iters = pick(0, 30);
    in.given_hold_iters = pick(0, 120);
    in.given_cooldown_iters = pick(in.given_hold_iters == 0 ? 1 : 0, 160);
    const int64_t fixed = in.head_iters + in.warmup_iters;
    // Planned before the cooldown begins (anywhere in head, warmup or the hold so far), or in a
    // cooldown under way after a hold the budget had planned at any length.
    const bool cooling = trial % 3 == 0 && in.given_cooldown_iters > 0;
    if (cooling) {
      in.hold_fixed_iters = pick(0, 2 * in.given_hold_iters);
      in.done = fixed + in.hold_fixed_iters + pick(0, 3 * in.given_cooldown_iters);
    } else {
      in.done = pick(0, fixed + in.given_hold_iters);
    }
    in.iter_s = uni(0.05, 2.0);
    in.epoch_end_s = trial % 5 == 0 ? 0.0 : uni(0.0, 30.0);
    in.elapsed_s = uni(0.0, 200.0);
    in.budget_s = in.elapsed_s + uni(-20.0, 600.0);
    if (in.budget_s <= 0) in.budget_s = 1;
    const BudgetPlan p = plan_to_budget(in);
    bool overrun = false;
    const int64_t want = brute_force_total(in, &overrun);
    ASSERT_EQ(p.total_iters, want) << "trial " << trial;
    ASSERT_EQ(p.overrun, overrun) << "trial " << trial;
    EXPECT_EQ(p.total_iters, fixed + p.hold_iters + p.cooldown_iters);
    EXPECT_NEAR(p.predicted_s, in.elapsed_s + walk_cost(in, p.total_iters), 1e-6);
    if (!p.overrun) {
      EXPECT_LE(p.predicted_s, in.budget_s + 1e-9);
    }
    overruns += p.overrun;
    capped += p.capped;
    fitted += !p.overrun && !p.capped;
    if (cooling) {
      ASSERT_EQ(p.hold_iters, in.hold_fixed_iters) << "trial " << trial << ": the hold is over";
      ASSERT_GE(p.total_iters, in.done + 1) << "trial " << trial;
      cooled += 1;
      continue;
    }
    EXPECT_GE(p.hold_iters, std::max<int64_t>(0, in.done - fixed)) << "what has run stays run";
    if (in.given_cooldown_iters > 0) {
      EXPECT_GE(p.cooldown_iters, 1);
    } else {
      EXPECT_EQ(p.cooldown_iters, 0);
    }
    // The ratio is kept, to rounding, wherever what has already run does not force a longer hold.
    const int64_t span = p.hold_iters + p.cooldown_iters;
    const double share = static_cast<double>(in.given_hold_iters) /
                         static_cast<double>(in.given_hold_iters + in.given_cooldown_iters);
    if (p.hold_iters > std::max<int64_t>(0, in.done - fixed) && p.cooldown_iters > 1) {
      EXPECT_LE(std::abs(static_cast<double>(p.hold_iters) - share * static_cast<double>(span)), 0.5 + 1e-9)
          << "trial " << trial;
    }
  }
  // The random inputs reach every kind of plan.
  EXPECT_GT(overruns, 50);
  EXPECT_GT(capped, 50);
  EXPECT_GT(fitted, 500);
  EXPECT_GT(cooled, 500);
}

TEST(TimeBudget, ShrinksAndStretchesHoldAndCooldownTogether) {
  // 100 batches per epoch, head 20, warmup 15, hold 213, cooldown 302 (the recipe's 5.5 epochs),
  // planned at the end of epoch 1: 1 s per iteration and 10 s per epoch end.
  BudgetInputs in;
  in.batches_per_epoch = 100;
  in.head_iters = 20, in.warmup_iters = 15, in.given_hold_iters = 213, in.given_cooldown_iters = 302;
  in.done = 100, in.iter_s = 1.0, in.epoch_end_s = 10.0, in.elapsed_s = 120.0;
  // Room for exactly 300 more iterations and their 3 epoch ends (at 200, 300, 400).
  in.budget_s = 120 + 300 + 30;
  BudgetPlan p = plan_to_budget(in);
  EXPECT_EQ(p.total_iters, 400);
  EXPECT_EQ(p.hold_iters + p.cooldown_iters, 365);
  EXPECT_EQ(p.hold_iters, std::llround(365.0 * 213 / 515));
  EXPECT_FALSE(p.overrun || p.capped);
  EXPECT_DOUBLE_EQ(p.predicted_s, in.budget_s);
  // One second less: the 400th iteration does not fit, and the run ends at 399.
  in.budget_s -= 1;
  EXPECT_EQ(plan_to_budget(in).total_iters, 399);
  // A budget far beyond the schedule: at most 3x hold + cooldown.
  in.budget_s = 1e6;
  p = plan_to_budget(in);
  EXPECT_TRUE(p.capped);
  EXPECT_EQ(p.total_iters, 35 + 3 * 515);
  // A budget already spent: end as soon as the run can (one cooldown iteration).
  in.budget_s = 100;
  p = plan_to_budget(in);
  EXPECT_TRUE(p.overrun);
  EXPECT_EQ(p.hold_iters, 65);
  EXPECT_EQ(p.cooldown_iters, 1);
}

TEST(TimeBudget, InACooldownUnderWayOnlyItsLengthChanges) {
  // The recipe of the test above with the cooldown begun after a hold of 200 planned iterations
  // (cooldown from 235), now at 300: 1 s per iteration, 10 s per epoch end.
  BudgetInputs in;
  in.batches_per_epoch = 100;
  in.head_iters = 20, in.warmup_iters = 15, in.given_hold_iters = 213, in.given_cooldown_iters = 302;
  in.hold_fixed_iters = 200;
  in.done = 300, in.iter_s = 1.0, in.epoch_end_s = 10.0, in.elapsed_s = 400.0;
  in.budget_s = 400 + 250 + 30;  // 250 more iterations and the epoch ends at 400, 500 and 550
  BudgetPlan p = plan_to_budget(in);
  EXPECT_EQ(p.total_iters, 550);
  EXPECT_EQ(p.hold_iters, 200);
  EXPECT_EQ(p.cooldown_iters, 550 - 235);
  EXPECT_FALSE(p.overrun || p.capped);
  // The machine slowed to 2 s per iteration: the cooldown shrinks (130 more iterations, epoch
  // ends at 400 and 430: 130·2 + 20 = 280; one more would need 282).
  in.iter_s = 2.0;
  p = plan_to_budget(in);
  EXPECT_EQ(p.total_iters, 430);
  EXPECT_EQ(p.hold_iters, 200);
  // Spent: one more iteration.
  in.elapsed_s = in.budget_s;
  p = plan_to_budget(in);
  EXPECT_TRUE(p.overrun);
  EXPECT_EQ(p.total_iters, 301);
  EXPECT_EQ(p.cooldown_iters, 301 - 235);
  // A hold that ends after what has run is not a cooldown under way.
  in.hold_fixed_iters = 300;
  EXPECT_THROW(plan_to_budget(in), std::exception);
}

TEST(TimeBudget, RecentMeanForgetsAllButTheLastWindow) {
  ember::apps::RecentMean m(3);
  EXPECT_EQ(m.mean(), 0.0);
  m.add(1);
  EXPECT_DOUBLE_EQ(m.mean(), 1.0);
  m.add(2);
  EXPECT_DOUBLE_EQ(m.mean(), 1.5);
  for (double v : {3.0, 4.0, 5.0}) m.add(v);
  EXPECT_DOUBLE_EQ(m.mean(), 4.0);  // 3, 4, 5
  EXPECT_EQ(m.count(), 3);
  m.add(100);
  EXPECT_DOUBLE_EQ(m.mean(), (4.0 + 5.0 + 100.0) / 3.0);
  EXPECT_THROW(ember::apps::RecentMean(0), std::exception);
}

TEST(TimeBudget, BadInputsAreErrorsNamingThem) {
  BudgetInputs in;
  in.budget_s = 60, in.iter_s = 1, in.given_hold_iters = 10;
  EXPECT_NO_THROW(plan_to_budget(in));
  auto expect_error = [](BudgetInputs b, const std::string& what) {
    try {
      plan_to_budget(b);
      ADD_FAILURE() << "no error for " << what;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  BudgetInputs b = in;
  b.iter_s = 0;
  expect_error(b, "seconds per iteration");
  b = in;
  b.iter_s = std::nan("");
  expect_error(b, "seconds per iteration");
  b = in;
  b.budget_s = -1;
  expect_error(b, "positive number of seconds");
  b = in;
  b.given_hold_iters = 0;
  expect_error(b, "nothing to scale");
  b = in;
  b.batches_per_epoch = 0;
  expect_error(b, "batches per epoch");
}

namespace {
const char* kRun = "ember-effnet --model effnet_tiny --generated-size 200 --val-fraction 0.2 --batch 16 --workers 1"
                   " --threads 1 --head-epochs 0 --warmup 0 --seed 4";

// The run's last checkpoint holds these metadata values ("" = the key is absent); the knot's
// progress is compared as a number.
void expect_checkpoint(const std::string& out_dir, const std::map<std::string, std::string>& want) {
  const auto meta = ember::nn::load_safetensors(out_dir + "/last.safetensors").metadata;
  for (const auto& [key, value] : want) {
    SCOPED_TRACE(out_dir + ": " + key);
    if (value.empty()) {
      EXPECT_EQ(meta.count(key), 0u);
    } else if (!meta.count(key)) {
      ADD_FAILURE() << "no " << key;
    } else if (key == "budget_cooldown_knot_progress") {
      EXPECT_EQ(std::stod(meta.at(key)), std::stod(value));
    } else {
      EXPECT_EQ(meta.at(key), value);
    }
  }
}
}

TEST(TimeBudget, TheTrainerFollowsThePlanAndCheckpointsIt) {
  const fs::path dir = fs::temp_directory_path() / ("ember_budget_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  // 160 training images at batch 16: 10 iterations per epoch. Hold and cooldown of half an epoch
  // each, and an hour's budget: the plan is capped at 3x, 15 + 15 iterations over 3 epochs.
  const std::string a = (dir / "capped").string();
  auto r = ember::testing::run_app(std::string(kRun) + " --hold 0.5 --cooldown 0.5 --time-budget 60 --out " + a);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("capped at 3x"), std::string::npos) << r.output;
  EXPECT_EQ(ember::testing::count_lines(ember::testing::read_text(a + "/metrics.csv")), 4) << r.output;
  // Planned before the cooldown began: no knot.
  expect_checkpoint(a, {{"iteration", "30"}, {"budget_hold_iters", "15"}, {"budget_cooldown_iters", "15"},
                        {"budget_fixed", "1"}, {"budget_cooldown_knot_iters", ""}});
  // Resumed, the checkpoint's plan stands (the flags' one epoch would end at iteration 10).
  r = ember::testing::run_app(std::string(kRun) + " --hold 0.5 --cooldown 0.5 --out " + a + " --resume " + a +
                              "/last.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("time-budget plan: hold 15, cooldown 15"), std::string::npos) << r.output;

  // A budget already spent when the first epoch ends (0.06 s): the cooldown begins at once and
  // lasts one iteration, so the second epoch has one batch.
  const std::string b = (dir / "spent").string();
  r = ember::testing::run_app(std::string(kRun) + " --hold 1 --cooldown 1 --time-budget 0.001 --out " + b);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("the budget cannot be met"), std::string::npos) << r.output;
  expect_checkpoint(b, {{"iteration", "11"}, {"budget_hold_iters", "10"}, {"budget_cooldown_iters", "1"}});
  const std::string csv = ember::testing::read_text(b + "/metrics.csv");
  EXPECT_EQ(ember::testing::count_lines(csv), 3) << csv;
  EXPECT_NE(csv.find(",cooldown,"), std::string::npos) << csv;

  // The cooldown re-planned while under way (every quarter epoch, here 2 iterations): from
  // iteration 0 (hold 0) nothing has been measured yet, so the first plan is at iteration 2,
  // where the linear cooldown is 0.1 (of 20) or 0.2 (of 10) of its way down. From there the
  // learning rate goes on from where it is to --final-lr over the new length.
  const std::string lin = std::string(kRun) + " --lr 0.01 --final-lr 0 --cooldown-shape linear --hold 0";
  auto last_lr = [](const std::string& out_dir) {
    const std::string jsonl = ember::testing::read_text(out_dir + "/metrics.jsonl");
    const size_t at = jsonl.rfind("\"lr\": ");
    return at == std::string::npos ? -1.0 : std::stod(jsonl.substr(at + 6));
  };
  // Spent: the cooldown shrinks to end at the next iteration.
  const std::string d = (dir / "shrunk").string();
  r = ember::testing::run_app(lin + " --cooldown 2 --time-budget 0.001 --out " + d);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("no whole-network iteration ran before the cooldown"), std::string::npos) << r.output;
  expect_checkpoint(d, {{"iteration", "3"}, {"budget_cooldown_iters", "3"}, {"budget_cooldown_knot_iters", "2"},
                        {"budget_cooldown_knot_progress", "0.1"}});
  EXPECT_NEAR(last_lr(d), 0.01 * (1 - 0.1), 1e-9);  // iteration 2, the knot: where the curve was
  // An hour: the cooldown stretches to the cap, 3 x 10 iterations, and the last iteration's
  // rate is (1 − (0.2 + 0.8·27/28))·0.01.
  const std::string e = (dir / "stretched").string();
  r = ember::testing::run_app(lin + " --cooldown 1 --time-budget 60 --out " + e);
  ASSERT_EQ(r.code, 0) << r.output;
  expect_checkpoint(e, {{"iteration", "30"}, {"budget_cooldown_iters", "30"}, {"budget_cooldown_knot_iters", "2"},
                        {"budget_cooldown_knot_progress", "0.2"}});
  EXPECT_NEAR(last_lr(e), 0.01 * (1 - (0.2 + 0.8 * 27.0 / 28.0)), 1e-9);
  EXPECT_EQ(ember::testing::count_lines(ember::testing::read_text(e + "/metrics.csv")), 4) << r.output;
  // Resumed, the knot travels with the plan.
  r = ember::testing::run_app(lin + " --cooldown 1 --time-budget 60 --out " + e + " --resume " + e +
                              "/last.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("time-budget plan: hold 0, cooldown 30"), std::string::npos) << r.output;
  // A crafted knot outside the cooldown, or at its end, is refused naming the file and the keys.
  for (auto [key, value] : {std::pair{"budget_cooldown_knot_iters", "30"}, std::pair{"budget_cooldown_knot_progress", "1"},
                            std::pair{"budget_cooldown_knot_progress", "nan"}}) {
    ember::nn::SafetensorsFile crafted = ember::nn::load_safetensors(e + "/last.safetensors");
    crafted.metadata[key] = value;
    const std::string bad = (dir / "crafted.safetensors").string();
    ember::nn::save_safetensors(bad, crafted.tensors, crafted.metadata);
    r = ember::testing::run_app(lin + " --cooldown 1 --time-budget 60 --out " + (dir / "crafted").string() +
                                " --resume " + bad);
    EXPECT_NE(r.code, 0) << key << " = " << value;
    EXPECT_NE(r.output.find("'" + bad + "'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("budget_cooldown_knot_"), std::string::npos) << r.output;
  }

  // Nothing to scale is a clear error.
  r = ember::testing::run_app(
      "ember-effnet --model effnet_tiny --generated-size 200 --batch 16 --workers 1 --threads 1 --head-epochs 1 "
      "--warmup 0 --hold 0 --cooldown 0 --time-budget 5 --out " + b);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--time-budget scales the hold and the cooldown"), std::string::npos) << r.output;
  // Bad values are refused when the flags are read, not at the first plan.
  for (const char* bad : {"-1", "nan", "1e300", "soon"}) {
    r = ember::testing::run_app(std::string(kRun) + " --hold 1 --cooldown 1 --time-budget " + bad + " --out " + b);
    EXPECT_NE(r.code, 0) << bad;
    EXPECT_NE(r.output.find("--time-budget"), std::string::npos) << bad << ": " << r.output;
  }
  fs::remove_all(dir);
}
