// A leaf's "gradient ready" hook (Variable::set_grad_ready_hook): called once per backward, right
// after the last accumulation into the leaf, while Nodes nearer the inputs are still to run.
#include <string>
#include <vector>

#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::error_of;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

// What a hook saw each time it was called: the leaf's gradient then, and the calls before it.
struct HookLog {
  std::vector<std::string>* order;
  std::string name;
  std::vector<std::vector<double>> seen;
};

void watch(Variable& leaf, HookLog& log) {
  leaf.set_grad_ready_hook([&leaf, &log] {
    log.seen.push_back(leaf.grad().defined() ? values(leaf.grad()) : std::vector<double>{});
    log.order->push_back(log.name);
  });
}

TEST(GradReadyHook, FiresOnceAfterTheLastAccumulationNearestTheLossFirst) {
  const Tensor x = random_tensor({4, 3}, DType::f64, -1, 1, 1);
  Variable w1(random_tensor({3}, DType::f64, -1, 1, 2), true), w2(random_tensor({3}, DType::f64, -1, 1, 3), true);
  std::vector<std::string> order;
  HookLog l1{&order, "w1", {}}, l2{&order, "w2", {}};
  watch(w1, l1);
  watch(w2, l2);
  // w1 is used twice: first (x·w1, which backward reaches last) and again after w2 is added.
  Variable v = mul(add(mul(Variable(x), w1), w2), w1);
  sum(mul(v, v)).backward();

  ASSERT_EQ(order, (std::vector<std::string>{"w2", "w1"}));
  ASSERT_EQ(l1.seen.size(), 1u);
  ASSERT_EQ(l2.seen.size(), 1u);
  // What each hook saw is the final gradient: both of w1's contributions were in.
  EXPECT_EQ(l1.seen[0], values(w1.grad()));
  EXPECT_EQ(l2.seen[0], values(w2.grad()));
  // The float64 reference: L = Σ v², v = (x w1 + w2) w1 (row-wise, broadcast over the 4 rows):
  // dL/dw2 = Σ_rows 2 v w1, dL/dw1 = Σ_rows 2 v (x w1 + w2 + x w1).
  const auto xv = values(x), a = values(w1.data()), b = values(w2.data());
  std::vector<double> g1(3, 0.0), g2(3, 0.0);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) {
      const double u = xv[r * 3 + c] * a[c] + b[c], vv = u * a[c];
      g2[c] += 2 * vv * a[c];
      g1[c] += 2 * vv * (u + xv[r * 3 + c] * a[c]);
    }
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(values(w1.grad())[c], g1[c], 1e-12);
    EXPECT_NEAR(values(w2.grad())[c], g2[c], 1e-12);
  }
}

TEST(GradReadyHook, ALeafTwiceInOneOpFiresOnce) {
  Variable w(random_tensor({5}, DType::f64, -1, 1, 4), true);
  std::vector<std::string> order;
  HookLog log{&order, "w", {}};
  watch(w, log);
  sum(mul(w, w)).backward();
  ASSERT_EQ(log.seen.size(), 1u);
  const auto wv = values(w.data());
  for (size_t i = 0; i < wv.size(); ++i) EXPECT_DOUBLE_EQ(log.seen[0][i], 2 * wv[i]);
}

TEST(GradReadyHook, EachBackwardCallsItAgainAfterItsAccumulation) {
  Variable w(random_tensor({3}, DType::f64, -1, 1, 5), true);
  std::vector<std::string> order;
  HookLog log{&order, "w", {}};
  watch(w, log);
  Variable loss = sum(mul(w, 3.0));
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  ASSERT_EQ(log.seen.size(), 2u);
  EXPECT_EQ(log.seen[0], (std::vector<double>{3, 3, 3}));
  EXPECT_EQ(log.seen[1], (std::vector<double>{6, 6, 6}));  // accumulated into the first
}

TEST(GradReadyHook, OnlyLeavesInTheGraphAndRemovable) {
  Variable w(random_tensor({3}, DType::f64, -1, 1, 6), true), unused(random_tensor({3}, DType::f64, -1, 1, 7), true);
  std::vector<std::string> order;
  HookLog lw{&order, "w", {}}, lu{&order, "unused", {}};
  watch(w, lw);
  watch(unused, lu);
  sum(w).backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w"}));  // `unused` is not in the graph

  w.backward(ones_like(w.data()));  // backward from the leaf itself
  EXPECT_EQ(order, (std::vector<std::string>{"w", "w"}));

  w.set_grad_ready_hook(nullptr);
  sum(w).backward();
  EXPECT_EQ(order.size(), 2u);

  Variable y = mul(w, 2.0);
  EXPECT_NE(error_of([&] { y.set_grad_ready_hook([] {}); }).find("set_grad_ready_hook: only leaf Variables"),
            std::string::npos);
}

}  // namespace
