// Learning-rate schedules: the value on the first and last iteration of every phase, the
// phase names, and what holds past the end.
#include <cmath>
#include <numbers>

#include "optim/schedule.h"
#include "optim/sgd.h"
#include "tests/support/test_util.h"

using namespace ember;
using optim::Anneal;

namespace {

// Cosine from `start` to `end` at progress p, written out.
double cosine(double start, double end, double p) { return end + (start - end) * 0.5 * (1 + std::cos(std::numbers::pi * p)); }

}  // namespace

// The ember::Error message `message` contains `part`.
#define EXPECT_MESSAGE_HAS(message, part)                        \
  do {                                                           \
    const std::string m_ = (message);                            \
    EXPECT_NE(m_.find(part), std::string::npos) << "message: " << m_; \
  } while (0)

TEST(PhaseSchedule, ValuesAndNamesAtEveryPhaseBoundary) {
  // head [0, 10) · warmup [10, 15) · hold [15, 35) · cooldown [35, 50)
  optim::PhaseScheduleConfig c{.head_iters = 10, .head_lr = 0.01, .warmup_iters = 5, .warmup_start = 0.001,
                               .peak_lr = 0.1, .hold_iters = 20, .cooldown_iters = 15, .final_lr = 0.002,
                               .cooldown = Anneal::linear};
  optim::PhaseSchedule linear(c);
  EXPECT_EQ(linear.total_iters(), 50);
  struct Point {
    int64_t it;
    const char* phase;
    double lr;
  };
  const double peak = 0.1, fin = 0.002, start = 0.001;
  for (Point p : {Point{0, "head", 0.01}, Point{9, "head", 0.01},
                  Point{10, "warmup", start}, Point{14, "warmup", start + (peak - start) * 4.0 / 5.0},
                  Point{15, "hold", peak}, Point{34, "hold", peak},
                  Point{35, "cooldown", peak}, Point{49, "cooldown", peak + (fin - peak) * 14.0 / 15.0},
                  Point{50, "cooldown", fin}, Point{1000, "cooldown", fin}}) {
    EXPECT_EQ(linear.phase(p.it), p.phase) << "iteration " << p.it;
    EXPECT_NEAR(linear.lr(p.it), p.lr, 1e-15) << "iteration " << p.it;
  }
  EXPECT_EQ(linear.phase_begin("hold"), 15);
  EXPECT_EQ(linear.phase_begin("cooldown"), 35);

  c.cooldown = Anneal::cosine;
  optim::PhaseSchedule cos(c);
  EXPECT_NEAR(cos.lr(35), peak, 1e-15);
  EXPECT_NEAR(cos.lr(42), cosine(peak, fin, 7.0 / 15.0), 1e-15);
  EXPECT_NEAR(cos.lr(49), cosine(peak, fin, 14.0 / 15.0), 1e-15);
  EXPECT_NEAR(cos.lr(50), fin, 1e-15);
  EXPECT_NEAR(cos.lr(14), linear.lr(14), 1e-15);  // the other phases do not change

  // Empty phases vanish from the sequence.
  optim::PhaseSchedule no_head({.warmup_iters = 3, .warmup_start = 0.0, .peak_lr = 0.3, .cooldown_iters = 2,
                                .final_lr = 0.0, .cooldown = Anneal::linear});
  EXPECT_EQ(no_head.phase(0), "warmup");
  EXPECT_NEAR(no_head.lr(0), 0.0, 1e-15);
  EXPECT_NEAR(no_head.lr(2), 0.2, 1e-15);
  EXPECT_EQ(no_head.phase(3), "cooldown");
  EXPECT_NEAR(no_head.lr(3), 0.3, 1e-15);
  EXPECT_NEAR(no_head.lr(4), 0.15, 1e-15);

  EXPECT_THROW(linear.lr(-1), Error);
  EXPECT_THROW(optim::PhaseSchedule({.peak_lr = 0.1}), Error);  // every phase empty
  EXPECT_THROW(optim::PhaseSchedule({.head_iters = -1, .peak_lr = 0.1, .cooldown_iters = 3}), Error);
}

TEST(PhaseSchedule, AKnotCutsTheCooldownCurveAndEachPartKeepsItsOwnPace) {
  // hold [0, 4), cooldown [4, 4 + C) with a knot after K iterations at progress q.
  for (Anneal shape : {Anneal::linear, Anneal::cosine}) {
    auto curve = [&](double p) { return shape == Anneal::linear ? 0.2 + (0.01 - 0.2) * p : cosine(0.2, 0.01, p); };
    optim::PhaseScheduleConfig c{.peak_lr = 0.2, .hold_iters = 4, .cooldown_iters = 30, .final_lr = 0.01,
                                 .cooldown = shape, .cooldown_knot_iters = 7, .cooldown_knot_progress = 0.4};
    optim::PhaseSchedule s(c);
    EXPECT_EQ(s.total_iters(), 34);
    EXPECT_EQ(s.phase_begin("cooldown"), 4);
    for (int64_t it = 4; it < 34; ++it) {
      const int64_t k = it - 4;  // iterations into the cooldown
      const double p = k < 7 ? 0.4 * static_cast<double>(k) / 7.0 : 0.4 + 0.6 * static_cast<double>(k - 7) / 23.0;
      EXPECT_EQ(s.phase(it), "cooldown") << it;
      EXPECT_NEAR(s.progress(it), p, 1e-15) << it;
      EXPECT_NEAR(s.lr(it), curve(p), 1e-15) << it;
    }
    EXPECT_NEAR(s.lr(34), 0.01, 1e-15);
    EXPECT_EQ(s.progress(34), 1.0);
    EXPECT_NEAR(s.lr(3), 0.2, 1e-15);

    // A knot where the uneven cooldown already was changes nothing: a cooldown of 20 knotted at
    // 5 with progress 5/20 is the plain cooldown of 20.
    optim::PhaseSchedule plain({.peak_lr = 0.2, .hold_iters = 4, .cooldown_iters = 20, .final_lr = 0.01, .cooldown = shape});
    optim::PhaseSchedule knotted({.peak_lr = 0.2, .hold_iters = 4, .cooldown_iters = 20, .final_lr = 0.01,
                                  .cooldown = shape, .cooldown_knot_iters = 5, .cooldown_knot_progress = 0.25});
    for (int64_t it = 0; it <= 26; ++it) EXPECT_NEAR(knotted.lr(it), plain.lr(it), 1e-15) << it;
  }
  // A knot outside the cooldown or a progress outside [0, 1) is an error naming it.
  auto bad = [](int64_t k, double q) {
    return optim::PhaseSchedule({.peak_lr = 0.1, .cooldown_iters = 10, .cooldown_knot_iters = k, .cooldown_knot_progress = q});
  };
  EXPECT_NO_THROW(bad(9, 0.99));
  EXPECT_MESSAGE_HAS(ember::testing::error_of([&] { bad(10, 0.5); }), "knot at iteration 10");
  EXPECT_MESSAGE_HAS(ember::testing::error_of([&] { bad(-1, 0.5); }), "knot at iteration -1");
  EXPECT_MESSAGE_HAS(ember::testing::error_of([&] { bad(3, 1.0); }), "progress at its knot is 1");
  EXPECT_MESSAGE_HAS(ember::testing::error_of([&] { bad(3, std::nan("")); }), "progress at its knot");
  EXPECT_MESSAGE_HAS(ember::testing::error_of([] {
                     optim::PiecewiseSchedule({{"part", 3, 0.1, 0.0, Anneal::linear, 0.7, 0.2}});
                   }),
                   "from 0.7 to 0.2");
}

TEST(CosineSchedule, WarmsUpThenFollowsTheCosine) {
  optim::CosineSchedule s(/*base_lr=*/0.5, /*total_iters=*/100, /*warmup_iters=*/10, /*warmup_start=*/0.05,
                          /*min_lr=*/0.01);
  EXPECT_EQ(s.phase(0), "warmup");
  EXPECT_NEAR(s.lr(0), 0.05, 1e-15);
  EXPECT_NEAR(s.lr(9), 0.05 + 0.45 * 0.9, 1e-15);
  EXPECT_EQ(s.phase(10), "cosine");
  EXPECT_NEAR(s.lr(10), 0.5, 1e-15);
  EXPECT_NEAR(s.lr(55), cosine(0.5, 0.01, 0.5), 1e-15);  // halfway: the mean of the two
  EXPECT_NEAR(s.lr(55), 0.255, 1e-15);
  EXPECT_NEAR(s.lr(99), cosine(0.5, 0.01, 89.0 / 90.0), 1e-15);
  EXPECT_NEAR(s.lr(100), 0.01, 1e-15);
  optim::CosineSchedule plain(1.0, 4);
  EXPECT_EQ(plain.phase(0), "cosine");
  EXPECT_NEAR(plain.lr(2), 0.5, 1e-15);
  EXPECT_THROW(optim::CosineSchedule(1.0, 5, 6), Error);
}

TEST(StepSchedule, DecaysAtEachMilestone) {
  optim::StepSchedule every(0.1, /*step_size=*/30, /*gamma=*/0.5);
  EXPECT_DOUBLE_EQ(every.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(every.lr(29), 0.1);
  EXPECT_DOUBLE_EQ(every.lr(30), 0.05);
  EXPECT_DOUBLE_EQ(every.lr(59), 0.05);
  EXPECT_DOUBLE_EQ(every.lr(60), 0.025);
  optim::StepSchedule milestones(1.0, std::vector<int64_t>{80, 20}, 0.1);  // sorted internally
  EXPECT_DOUBLE_EQ(milestones.lr(19), 1.0);
  EXPECT_DOUBLE_EQ(milestones.lr(20), 0.1);
  EXPECT_DOUBLE_EQ(milestones.lr(79), 0.1);
  EXPECT_NEAR(milestones.lr(80), 0.01, 1e-17);
  EXPECT_THROW(optim::StepSchedule(0.1, int64_t{0}), Error);
}

TEST(Schedule, DrivesAnOptimizersLearningRate) {
  Variable w(ones({2}, DType::f64), true);
  optim::SGD opt(std::vector<Variable>{w}, {.lr = 1.0});
  optim::CosineSchedule s(0.2, 10, 2, 0.0, 0.0);
  for (int64_t it = 0; it < 4; ++it) {
    opt.set_lr(s.lr(it));
    w.set_grad(ones({2}, DType::f64));
    opt.step();
  }
  // Σ lr over iterations 0..3: 0, 0.1, 0.2, cosine(0.2, 0, 1/8)
  double total = 0 + 0.1 + 0.2 + cosine(0.2, 0.0, 1.0 / 8.0);
  EXPECT_TRUE(ember::testing::all_close(w.data(), {1 - total, 1 - total}, 1e-14));
}
