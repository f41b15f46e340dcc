// Gradients of the elementwise ops (finite differences in f64) and the autograd engine:
// accumulation, zero_grad, no_grad, detach, retain_graph, non-scalar roots, freeing saved tensors.
#include <cmath>
#include <limits>
#include <string>

#include "tests/support/test_util.h"

using ember::testing::error_of;

using namespace ember;
using ember::testing::all_close;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

Variable leaf(const Shape& shape, double lo, double hi, uint64_t seed) {
  return Variable(random_tensor(shape, DType::f64, lo, hi, seed), true);
}

// testing::gradcheck on inputs whose .grad starts empty (they are reused across checks, and
// gradients accumulate).
::testing::AssertionResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                                     std::vector<Variable> inputs) {
  for (Variable& v : inputs)
    if (v.requires_grad()) v.zero_grad();
  return ember::testing::gradcheck(f, inputs);
}


}  // namespace

// ---- gradients of the ops -------------------------------------------------------------

// Every op's gradient, broadcast on both sides: the op harness (test_backend_ops.cpp).

TEST(BinaryGrad, ScalarFormsAndOperators) {
  Variable a = leaf({2, 3}, 0.5, 1.5, 10), b = leaf({3}, 0.5, 1.5, 11);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return (v[0] + 2.0) * 3.0 - v[0] / 4.0; }, {a}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return pow(v[0], 2.5) + rsub(1.0, v[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return 2.0 - v[0] * v[1] + 1.0; }, {a, b}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return 3.0 * (v[0] - v[1]) / v[1]; }, {a, b}));
}

TEST(UnaryGrad, NamedFunctionsAndChains) {  // every op alone: the op harness
  // the named functions, the unary minus, a strided input and a chain
  Variable x = Variable(non_contiguous(random_tensor({3, 4}, DType::f64, -2, 2, 32)), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return -silu(v[0]); }, {x}));
  Variable p = leaf({5}, 0.5, 2, 33);
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Variable>& v) { return tanh(gelu(log(sqrt(v[0])))) * sigmoid(exp(neg(v[0]))); }, {p}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return rsqrt(v[0]) + abs(v[0]) + relu(v[0]); }, {p}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return gelu_tanh(v[0]); }, {p}));
}

TEST(ClampGrad, TwoAndOneSided) {
  // keep x at least 0.05 away from every bound used below
  auto v = values(random_tensor({4, 5}, DType::f64, -1, 1, 40));
  for (double& e : v)
    for (double bound : {-0.5, 0.5, 0.2, -0.2})
      if (std::fabs(e - bound) < 0.05) e = bound + (e < bound ? -0.05 : 0.05);
  Variable x(from_vector<double>(v, {4, 5}), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return clamp(in[0], -0.5, 0.5); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return clamp(in[0], -kInf, 0.2); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return clamp(in[0], -0.2, kInf); }, {x}));
  // the gradient is exactly g inside, 0 outside
  x.zero_grad();
  clamp(x, -0.5, 0.5).backward(ones({4, 5}, DType::f64));
  auto g = values(x.grad());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(g[i], std::fabs(v[i]) <= 0.5 ? 1.0 : 0.0) << i;
}

TEST(WhereGrad, BroadcastOperandsGetSummedGradients) {
  Tensor cond = gt(random_tensor({3, 4}, DType::f64, -1, 1, 50), 0.0);
  Variable a = leaf({3, 1}, -1, 1, 51), b = leaf({4}, -1, 1, 52);
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& v) { return where(cond, v[0], v[1]); }, {a, b}));
  // cond broadcast too; b needs no gradient and gets none
  Tensor row = gt(random_tensor({4}, DType::f64, -1, 1, 53), 0.0);
  Variable c = leaf({3, 4}, -1, 1, 54);
  Variable d(random_tensor({3, 4}, DType::f64, -1, 1, 55));
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& v) { return where(row, v[0] * v[0], v[1]); }, {c, d}));
  EXPECT_FALSE(d.grad().defined());
  // exactly g where cond holds, 0 elsewhere, summed over the broadcast dim
  a.zero_grad();
  b.zero_grad();
  where(cond, a, b).backward(ones({3, 4}, DType::f64));
  auto vc = values(cond), ga = values(a.grad()), gb = values(b.grad());
  for (int i = 0; i < 3; ++i) {
    double n = 0;
    for (int j = 0; j < 4; ++j) n += vc[i * 4 + j];
    EXPECT_EQ(ga[i], n);
  }
  for (int j = 0; j < 4; ++j) {
    double n = 0;
    for (int i = 0; i < 3; ++i) n += 1 - vc[i * 4 + j];
    EXPECT_EQ(gb[j], n);
  }
}

// ---- the engine -----------------------------------------------------------------------

TEST(Engine, AVariableUsedTwiceGetsTheSumOfBothPaths) {
  Variable x = leaf({2, 3}, -1, 1, 60);
  Variable y = x * x + exp(x);  // dy/dx = 2x + eˣ
  y.backward(ones({2, 3}, DType::f64));
  auto vx = values(x.data());
  std::vector<double> expected;
  for (double v : vx) expected.push_back(2 * v + std::exp(v));
  EXPECT_TRUE(all_close(x.grad(), expected, 1e-12, 1e-14));
}

TEST(Engine, GradientsAccumulateAcrossBackwardCallsUntilZeroGrad) {
  Variable x = leaf({4}, -1, 1, 61);
  mul(x, 3.0).backward(ones({4}, DType::f64));
  mul(x, 2.0).backward(ones({4}, DType::f64));
  EXPECT_TRUE(all_close(x.grad(), std::vector<double>(4, 5.0), 0, 0));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  mul(x, 2.0).backward(ones({4}, DType::f64));
  EXPECT_TRUE(all_close(x.grad(), std::vector<double>(4, 2.0), 0, 0));
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Variable x = leaf({3}, -1, 1, 62);
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    Variable y = sigmoid(x) * x;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    EXPECT_THROW(y.backward(ones({3}, DType::f64)), Error);
  }
  EXPECT_TRUE(grad_enabled());
  Variable z = sigmoid(x);
  EXPECT_TRUE(z.requires_grad());
  ASSERT_NE(z.grad_fn(), nullptr);
  EXPECT_EQ(z.grad_fn()->name, "sigmoid");
}

TEST(Engine, DetachStopsTheGradientButSharesTheData) {
  Variable x = leaf({3}, -1, 1, 63);
  Variable d = x.detach();
  EXPECT_EQ(d.data().storage(), x.data().storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  Variable y = x * d;  // d/dx = d (= x), not 2x
  y.backward(ones({3}, DType::f64));
  EXPECT_TRUE(all_close(x.grad(), values(x.data()), 0, 0));
  EXPECT_FALSE(d.grad().defined());
}

TEST(Engine, ASecondBackwardNeedsRetainGraph) {
  Tensor g = ones({2, 2}, DType::f64);
  {
    Variable x = leaf({2, 2}, -1, 1, 64);
    Variable y = tanh(x * 2.0);
    y.backward(g);
    try {
      y.backward(g);
      FAIL() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pass retain_graph=true"), std::string::npos) << e.what();
    }
  }
  Variable x = leaf({2, 2}, -1, 1, 64);
  Variable y = tanh(x * 2.0);
  y.backward(g, /*retain_graph=*/true);
  Tensor once = x.grad().clone();
  y.backward(g);
  EXPECT_TRUE(all_close(x.grad(), mul(once, 2.0), 1e-15, 0));
}

TEST(Engine, NonScalarRootsNeedAGradient) {
  Variable x = leaf({2, 3}, -1, 1, 65);
  Tensor w = random_tensor({2, 3}, DType::f64, -1, 1, 66);
  Variable y = x * Variable(w);
  std::string msg = error_of([&] { y.backward(); });
  EXPECT_NE(msg.find("backward: the output has shape [2, 3]; pass a gradient"), std::string::npos) << msg;
  Tensor g = random_tensor({2, 3}, DType::f64, -1, 1, 67);
  y.backward(g);
  EXPECT_TRUE(all_close(x.grad(), mul(g, w), 1e-15, 0));
  // a one-element output needs none
  Variable s = leaf({1}, -1, 1, 68);
  exp(s).backward();
  EXPECT_NEAR(s.grad().item(), std::exp(s.item()), 1e-15);
  EXPECT_NE(error_of([&] { y.backward(ones({3, 2}, DType::f64)); }).find("gradient shape [3, 2] does not match"),
            std::string::npos);
}

TEST(Engine, SavedTensorsAreReleasedAfterBackward) {
  // log saves its input, sigmoid its output, mul both inputs, clamp its input
  Tensor t = random_tensor({4, 5}, DType::f64, 0.5, 1.5, 70);
  Variable x(t, true);
  const long base = t.storage().use_count();  // t and x
  Variable y = log(x);
  EXPECT_EQ(t.storage().use_count(), base + 1);
  Variable s = sigmoid(y);
  EXPECT_EQ(s.data().storage().use_count(), 2);  // s and the saved output
  Variable z = clamp(s, 0.0, 0.9) * x;
  EXPECT_EQ(t.storage().use_count(), base + 2);
  z.backward(ones({4, 5}, DType::f64));
  EXPECT_EQ(t.storage().use_count(), base);
  EXPECT_EQ(s.data().storage().use_count(), 1);

  // with retain_graph the saved tensors stay
  Variable y2 = log(x);
  y2.backward(ones({4, 5}, DType::f64), /*retain_graph=*/true);
  EXPECT_EQ(t.storage().use_count(), base + 1);
  y2.backward(ones({4, 5}, DType::f64));
  EXPECT_EQ(t.storage().use_count(), base);
}
