// Reductions: forward against a naive float64 reference (sum, mean, max, min, argmax, argmin,
// var over several dim sets, keepdim, non-contiguous, ties and NaN), the differentiable
// wrappers' gradients (gradcheck in f64, tie splitting), error messages, and CUDA vs CPU.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class Op { sum, mean, max, min, argmax, argmin, var };

// Naive reference over row-major values of `shape`: every input element is visited in order and
// folded into its output; an output's reduced elements arrive in increasing reduced index, so the
// first maximum (or the first NaN, which wins) is the one kept.
std::vector<double> reference(const std::vector<double>& x, const Shape& shape, std::vector<int64_t> dims, Op op,
                              int64_t correction = 1) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  for (auto& d : dims) d = d < 0 ? d + nd : d;
  auto reduced = [&](int64_t d) { return std::find(dims.begin(), dims.end(), d) != dims.end(); };
  int64_t outputs = 1, count = 1;
  for (int64_t d = 0; d < nd; ++d) (reduced(d) ? count : outputs) *= shape[d];
  std::vector<double> acc(outputs, 0.0), best(outputs, 0.0), arg(outputs, -1.0);
  std::vector<std::vector<double>> members(outputs);
  for (int64_t lin = 0; lin < static_cast<int64_t>(x.size()); ++lin) {
    int64_t rem = lin, out = 0, out_mul = 1, red = 0, red_mul = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      if (reduced(d)) {
        red += i * red_mul;
        red_mul *= shape[d];
      } else {
        out += i * out_mul;
        out_mul *= shape[d];
      }
    }
    const double v = x[lin];
    acc[out] += v;
    members[out].push_back(v);
    const bool is_max = op == Op::max || op == Op::argmax;
    const double b = best[out];
    bool take = arg[out] < 0 || (std::isnan(v) && !std::isnan(b)) ||
                (!std::isnan(b) && !std::isnan(v) && (is_max ? v > b : v < b));
    if (take) {
      best[out] = v;
      arg[out] = static_cast<double>(red);
    }
  }
  std::vector<double> result(outputs);
  for (int64_t o = 0; o < outputs; ++o) {
    switch (op) {
      case Op::sum: result[o] = acc[o]; break;
      case Op::mean: result[o] = acc[o] / count; break;
      case Op::max:
      case Op::min: result[o] = best[o]; break;
      case Op::argmax:
      case Op::argmin: result[o] = arg[o]; break;
      case Op::var: {
        const double mean = acc[o] / count;
        double ss = 0;
        for (double v : members[o]) ss += (v - mean) * (v - mean);
        result[o] = ss / static_cast<double>(count - correction);
        break;
      }
    }
  }
  return result;
}

Tensor run(Op op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, int64_t correction = 1) {
  switch (op) {
    case Op::sum: return sum(x, dims, keepdim);
    case Op::mean: return mean(x, dims, keepdim);
    case Op::max: return max(x, dims, keepdim);
    case Op::min: return min(x, dims, keepdim);
    case Op::argmax: return argmax(x, dims, keepdim);
    case Op::argmin: return argmin(x, dims, keepdim);
    case Op::var: return var(x, dims, correction, keepdim);
  }
  return Tensor();
}

const std::vector<std::vector<int64_t>> kDimSets = {{}, {0}, {1}, {-1}, {0, 2}, {2, 0, 1}};

template <class Fn>
void expect_error(Fn&& fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error containing \"" << fragment << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Reduce, EveryReductionMatchesTheReferenceOverDimSets) {
  const Shape shape{3, 4, 5};
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor base = random_tensor(shape, dt, -2.0, 2.0, 7);
    for (bool strided : {false, true}) {
      Tensor x = strided ? non_contiguous(base) : base;
      const std::vector<double> xv = values(x);
      const double rtol = dt == DType::f32 ? 1e-5 : 1e-12;
      for (const auto& dims : kDimSets) {
        for (Op op : {Op::sum, Op::mean, Op::max, Op::min, Op::argmax, Op::argmin, Op::var}) {
          for (bool keepdim : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "op " << static_cast<int>(op) << " dims " << shape_str(dims)
                                              << " keepdim " << keepdim << " " << dtype_name(dt)
                                              << (strided ? " strided" : ""));
            Tensor out = run(op, x, dims, keepdim);
            EXPECT_EQ(out.shape(), reduced_shape(shape, dims, keepdim));
            EXPECT_EQ(out.dtype(), op == Op::argmax || op == Op::argmin ? DType::i64 : dt);
            EXPECT_TRUE(all_close(out, reference(xv, shape, dims, op), rtol, 1e-6));
          }
        }
      }
    }
  }
}

TEST(Reduce, VarianceWithCorrectionZeroAndOne) {
  Tensor x = random_tensor({6, 7}, DType::f64, -3.0, 3.0, 11);
  for (int64_t correction : {0, 1}) {
    for (const std::vector<int64_t>& dims : {std::vector<int64_t>{}, {0}, {1}}) {
      EXPECT_TRUE(all_close(var(x, dims, correction), reference(values(x), x.shape(), dims, Op::var, correction),
                            1e-12, 1e-12));
    }
  }
  // By hand: [1, 2, 3, 4] has mean 2.5 and Σ(x - mean)² = 5.
  Tensor h = from_vector<double>({1, 2, 3, 4}, {4});
  EXPECT_DOUBLE_EQ(var(h, {}, 0).item(), 1.25);
  EXPECT_DOUBLE_EQ(var(h, {}, 1).item(), 5.0 / 3.0);
}

TEST(Reduce, ArgTiesPickTheFirstAndNaNWins) {
  Tensor t = from_vector<double>({1, 3, 3, 2, 2, 0, 5, 5, 5}, {3, 3});
  EXPECT_EQ(values(argmax(t, {1})), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(values(argmin(t, {1})), (std::vector<double>{0, 2, 0}));
  EXPECT_EQ(values(argmax(t, {0})), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(argmax(t).item(), 6.0);  // the first 5 in row-major order
  Tensor n = from_vector<double>({1, kNaN, 3, kNaN, 0, -1, 4, 2}, {2, 4});
  auto mx = values(max(n, {1})), mn = values(min(n, {1}));
  EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mn[0]));
  EXPECT_EQ(mx[1], 4.0);
  EXPECT_EQ(mn[1], -1.0);
  EXPECT_EQ(values(argmax(n, {1})), (std::vector<double>{1, 2}));
  EXPECT_EQ(values(argmin(n, {1})), (std::vector<double>{1, 1}));
  EXPECT_TRUE(std::isnan(sum(n).item()));
}

TEST(Reduce, LongReductionsSplitAcrossThreadsKeepTheFirstArg) {
  // 40000 elements into one output takes the split path on several threads.
  std::vector<double> v(40000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 7919) % 1000);
  v[25000] = 5000.0;
  v[39000] = 5000.0;
  Tensor x = from_vector<double>(v, {40000});
  EXPECT_EQ(argmax(x).item(), 25000.0);
  EXPECT_EQ(max(x).item(), 5000.0);
  EXPECT_TRUE(all_close(sum(x.to(DType::f32)), reference(v, {40000}, {}, Op::sum), 1e-6));
}

TEST(Reduce, EmptyDimsSumToZero) {
  Tensor x = zeros({0, 3});
  Tensor s = sum(x, {0});
  EXPECT_EQ(s.shape(), (Shape{3}));
  EXPECT_EQ(values(s), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(sum(zeros({2, 0}, DType::f64), {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(zeros({2, 0}, DType::f64)).item(), 0.0);
}

TEST(Reduce, IntegerAndBoolSums) {
  Tensor b = gt(from_vector<double>({0.5, -1, 2, 3}, {4}), 0.0);
  Tensor count = sum(b);
  EXPECT_EQ(count.dtype(), DType::i64);
  EXPECT_EQ(count.item(), 3.0);
  Tensor big = full({5000}, 1e6, DType::i64);
  EXPECT_EQ(sum(big).item(), 5e9);  // past float's exact integers
}

TEST(Reduce, ErrorsNameTheOpAndTheProblem) {
  Tensor x = random_tensor({2, 3}, DType::f32);
  expect_error([&] { sum(x, {2}); }, "sum: dim 2 out of range for a tensor of 2 dim(s)");
  expect_error([&] { max(x, {0, -2}); }, "max: a dim appears twice");
  expect_error([&] { max(zeros({0, 3}), {0}); }, "max: cannot reduce over an empty dim (shape [0, 3])");
  expect_error([&] { mean(full({2}, 1.0, DType::i64)); }, "mean: expected a floating tensor");
  expect_error([&] { var(x, {1}, 3); }, "var: 3 element(s) with correction 3 leaves no degrees of freedom");
  Variable v(x, true);
  expect_error([&] { sum(v, {5}); }, "sum: dim 5 out of range");
}

// ---- gradients ----------------------------------------------------------------------

TEST(ReduceGrad, GradcheckOverDimSets) {
  for (const auto& dims : kDimSets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "dims " << shape_str(dims) << " keepdim " << keepdim);
      auto fresh = [](uint64_t seed) { return Variable(random_tensor({3, 4, 5}, DType::f64, -1, 1, seed), true); };
      EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return sum(in[0], dims, keepdim); }, {fresh(1)}));
      EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return mean(in[0], dims, keepdim); }, {fresh(2)}));
      EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return max(in[0], dims, keepdim); }, {fresh(3)}));
      EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return min(in[0], dims, keepdim); }, {fresh(4)}));
      for (int64_t correction : {0, 1}) {
        EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return var(in[0], dims, correction, keepdim); },
                              {fresh(5 + correction)}));
      }
    }
  }
}

TEST(ReduceGrad, GradcheckOnNonContiguousInputsAndChains) {
  Variable x(non_contiguous(random_tensor({4, 6}, DType::f64, -1, 1, 21)), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return var(in[0], {0}); }, {x}));
  Variable y(random_tensor({4, 6}, DType::f64, -1, 1, 22), true);
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Variable>& in) { return mean(max(in[0] * in[0], {1}, true) + sum(in[0], {1}, true)); },
      {y}));
}

TEST(ReduceGrad, TiesSplitTheGradientEvenly) {
  Variable x(from_vector<double>({1, 3, 3, 2, 2, 0}, {2, 3}), true);
  max(x, {1}).backward(from_vector<double>({1, 4}, {2}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0.5, 0.5, 2, 2, 0}));
  Variable y(from_vector<double>({1, 1, 3, 1}, {4}), true);
  min(y).backward();
  const double third = 1.0 / 3.0;
  EXPECT_TRUE(all_close(y.grad(), std::vector<double>{third, third, 0, third}, 1e-15, 0));
  Variable z(from_vector<double>({1, kNaN, 3}, {3}), true);
  max(z).backward();  // NaN is the maximum: it takes the gradient
  EXPECT_EQ(values(z.grad()), (std::vector<double>{0, 1, 0}));
}

TEST(ReduceGrad, GradientsHaveTheInputShapeWithKeepdimOrNot) {
  Variable x(random_tensor({2, 3, 4}, DType::f64), true);
  sum(mean(x, {1}, true)).backward();
  EXPECT_EQ(x.grad().shape(), (Shape{2, 3, 4}));
  EXPECT_TRUE(all_close(x.grad(), std::vector<double>(24, 1.0 / 3.0), 1e-15, 0));
}

TEST(ReduceGrad, FullReductionsReshapeTheirZeroDimGradient) {
  // The gradient of a full reduction is 0-d; it is reshaped to (1, 1, 1) to broadcast back.
  EXPECT_EQ(scalar_tensor(3.0).reshape({1, 1, 1}).shape(), (Shape{1, 1, 1}));
  EXPECT_EQ(scalar_tensor(3.0).flatten().shape(), (Shape{1}));
  Variable x(random_tensor({2, 3, 4}, DType::f64), true);
  sum(x).backward();
  EXPECT_EQ(values(x.grad()), std::vector<double>(24, 1.0));
}

// ---- CUDA ---------------------------------------------------------------------------

TEST(ReduceCuda, MatchesCpu) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor cpu_x = random_tensor({5, 6, 7}, dt, -3, 3, 31);
    Tensor gpu_x = cpu_x.to(gpu);
    const double rtol = dt == DType::bf16 ? 2e-2 : dt == DType::f16 ? 2e-3 : 1e-5;
    for (const auto& dims : kDimSets) {
      for (Op op : {Op::sum, Op::mean, Op::max, Op::min, Op::argmax, Op::argmin, Op::var}) {
        if ((dt == DType::bf16 || dt == DType::f16) && op == Op::var) continue;
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " op " << static_cast<int>(op) << " dims "
                                          << shape_str(dims));
        EXPECT_TRUE(all_close(run(op, non_contiguous(gpu_x), dims, false).cpu(), run(op, cpu_x, dims, false),
                              rtol, 1e-3));
      }
    }
  }
  Tensor n = from_vector<double>({1, kNaN, 3, kNaN, 4, 4, 0, 4}, {2, 4});
  EXPECT_EQ(values(argmax(n.to(gpu), {1}).cpu()), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(argmin(n.to(gpu), {1}).cpu()), (std::vector<double>{1, 2}));
  // Integer sums are exact, bool sums count.
  EXPECT_EQ(sum(full({5000}, 1e6, DType::i64, gpu)).item(), 5e9);
  EXPECT_EQ(sum(gt(from_vector<double>({0.5, -1, 2, 3}, {4}, DType::f32, gpu), 0.0)).item(), 3.0);
}

TEST(ReduceCuda, GradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Tensor host = random_tensor({4, 5, 6}, DType::f32, -1, 1, 41);
  for (const auto& dims : kDimSets) {
    Variable a(host, true), b(host.to(Device::cuda(0)), true);
    sum(var(a, dims) + max(a, dims)).backward();
    sum(var(b, dims) + max(b, dims)).backward();
    EXPECT_TRUE(all_close(b.grad().cpu(), a.grad(), 1e-4, 1e-5));
  }
}
