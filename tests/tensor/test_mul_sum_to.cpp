// mul_sum_to: the fused Σ a·b over broadcast dims used by the gradient of a broadcast product.
#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::random_tensor;
using ember::testing::values;

TEST(MulSumTo, MatchesFloat64ReferenceOnFastAndFallbackPaths) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = random_tensor({3, 4, 5, 6}, dt, -1, 1, 1), b = random_tensor({3, 4, 5, 6}, dt, -1, 1, 2);
    auto va = values(a), vb = values(b);
    // (3, 4, 1, 1): the fused path
    std::vector<double> ref(12, 0.0);
    for (int r = 0; r < 12; ++r)
      for (int j = 0; j < 30; ++j) ref[r] += va[r * 30 + j] * vb[r * 30 + j];
    Tensor out = mul_sum_to(a, b, {3, 4, 1, 1});
    EXPECT_EQ(out.shape(), (Shape{3, 4, 1, 1}));
    EXPECT_TRUE(all_close(out, ref, dt == DType::f32 ? 1e-5 : 1e-12, 1e-6));
    // (1, 4, 1, 6): not trailing, falls back to mul + sum
    std::vector<double> ref2(24, 0.0);
    for (int n = 0; n < 3; ++n)
      for (int c = 0; c < 4; ++c)
        for (int h = 0; h < 5; ++h)
          for (int w = 0; w < 6; ++w) {
            int i = ((n * 4 + c) * 5 + h) * 6 + w;
            ref2[c * 6 + w] += va[i] * vb[i];
          }
    EXPECT_TRUE(all_close(mul_sum_to(a, b, {1, 4, 1, 6}), ref2, dt == DType::f32 ? 1e-5 : 1e-12, 1e-6));
    // non-contiguous operand: fallback, same numbers
    EXPECT_TRUE(all_close(mul_sum_to(ember::testing::non_contiguous(a), b, {3, 4, 1, 1}), ref,
                          dt == DType::f32 ? 1e-5 : 1e-12, 1e-6));
  }
  EXPECT_THROW(mul_sum_to(zeros({2, 3}), zeros({3, 2}), {2, 1}), Error);
}

TEST(MulSumTo, SqueezeExciteScaleGradient) {
  // x (N, C, H, W) · s (N, C, 1, 1): the gradient of s goes through the fused path.
  Variable x(random_tensor({2, 3, 4, 4}, DType::f64, -1, 1, 3), true);
  Variable s(random_tensor({2, 3, 1, 1}, DType::f64, -1, 1, 4), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return mul(v[0], v[1]); }, {x, s}));
}
