// mul_sum_to: the fused Σ a·b over broadcast dims used by the gradient of a broadcast product.
// Its values on the fast (dot_rows) and fallback paths are the op harness's (test_backend_ops:
// mul_sum_to_*); here, its use in autograd and its error.
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::random_tensor;
using ember::testing::values;

TEST(MulSumTo, RejectsOperandsOfDifferentShapes) { EXPECT_THROW(mul_sum_to(zeros({2, 3}), zeros({3, 2}), {2, 1}), Error); }

TEST(MulSumTo, SqueezeExciteScaleGradient) {
  // x (N, C, H, W) · s (N, C, 1, 1): the gradient of s goes through the fused path.
  Variable x(random_tensor({2, 3, 4, 4}, DType::f64, -1, 1, 3), true);
  Variable s(random_tensor({2, 3, 1, 1}, DType::f64, -1, 1, 4), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return mul(v[0], v[1]); }, {x, s}));
}
