// Elementwise ops beyond what the op harness (test_backend_ops.cpp) checks for every op, dtype,
// layout and backend: edge values (NaN, ±inf), integers, in-place forms, strided outputs,
// unary_backward's rules in every dtype, and the errors. References: float64 with <cmath>
// (tests/support/references.h for the lists' ops).
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "tests/support/references.h"
#include "tests/support/test_util.h"

using ember::testing::error_of;

using namespace ember;
using ember::testing::all_close;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// The float64 references, one row per op of each list (tests/support/references.h).
using ember::testing::broadcast_index;
using ember::testing::reference_of;

bool is_comparison(BinaryOp op) { return binary_op_compares(op); }
double ref_binary(BinaryOp op, double a, double b) { return reference_of(op).f(a, b); }
double ref_derivative(UnaryOp op, double x) { return reference_of(op).df(x); }


std::vector<double> ref_binary_all(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out) {
  auto va = values(a), vb = values(b);
  std::vector<double> r(static_cast<size_t>(shape_numel(out)));
  for (int64_t i = 0; i < shape_numel(out); ++i)
    r[i] = ref_binary(op, va[broadcast_index(out, a.shape(), i)], vb[broadcast_index(out, b.shape(), i)]);
  return r;
}

// Operands in a range where the op is defined and (for comparisons) ties happen.
std::pair<Tensor, Tensor> binary_operands(BinaryOp op, const Shape& sa, const Shape& sb, DType dtype, uint64_t seed) {
  const auto& r = reference_of(op);
  if (is_comparison(op)) {
    Generator gen(seed);
    auto ints = [&](const Shape& s, double lo, double hi) {
      return randint(static_cast<int64_t>(lo), static_cast<int64_t>(hi) + 1, s, DType::i64, Device::cpu(), &gen).to(dtype);
    };
    Tensor a = ints(sa, r.a_lo, r.a_hi);
    return {a, ints(sb, r.b_lo, r.b_hi)};
  }
  return {random_tensor(sa, dtype, r.a_lo, r.a_hi, seed), random_tensor(sb, dtype, r.b_lo, r.b_hi, seed + 1)};
}

std::pair<double, double> unary_range(UnaryOp op) { return {reference_of(op).lo, reference_of(op).hi}; }

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType d) {
  switch (d) {
    case DType::f64: return {1e-12, 1e-14};
    case DType::bf16: return {8e-3, 1e-5};  // 8 significant bits: rounding is <= 2^-9 relative
    case DType::f16: return {2e-3, 1e-5};   // 11 significant bits
    default: return {1e-5, 1e-6};           // f32 (absolute part: cancellation in 1+erf, 1-y²)
  }
}

#define EXPECT_MESSAGE(stmt, text) EXPECT_NE(error_of([&] { stmt; }).find(text), std::string::npos) << error_of([&] { stmt; })

}  // namespace

// ---- binary ---------------------------------------------------------------------------

// Every op's values, broadcast and strided inputs and dtypes: the op harness
// (test_backend_ops.cpp). Here: what it does not reach, a strided output and a double operand.
TEST(Binary, IntoAStridedPoisonedOutputAndWithADouble) {
  for (DType dtype : {DType::f32, DType::f64}) {
    Tol tol = tol_for(dtype);
    for (BinaryOp op : kBinaryOps) {
      SCOPED_TRACE(std::string(binary_op_name(op)) + " " + dtype_name(dtype));
      // into a poisoned strided output: every element must be written
      if (!is_comparison(op)) {
        auto [a, b] = binary_operands(op, {3, 1, 5}, {4, 5}, dtype, 15);
        Tensor buf = empty({5, 4, 3}, dtype);
        ember::testing::poison(buf);
        Tensor out = buf.permute({2, 1, 0});  // (3, 4, 5), non-contiguous
        binary_into(op, out, a, b);
        EXPECT_TRUE(all_close(out, ref_binary_all(op, a, b, {3, 4, 5}), tol.rtol, tol.atol));
      }
      // a Tensor with a double
      auto [a, b] = binary_operands(op, {3, 4}, {}, dtype, 20);
      EXPECT_TRUE(all_close(binary(op, a, b.item()), ref_binary_all(op, a, b, {3, 4}), tol.rtol, tol.atol));
    }
  }
}

TEST(Binary, MaximumAndMinimumPropagateNaN) {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    Tensor a = from_vector<double>({1.0, kNaN, 3.0, kNaN, -2.0}, {5}, dtype);
    Tensor b = from_vector<double>({2.0, 0.5, kNaN, kNaN, -2.0}, {5}, dtype);
    EXPECT_TRUE(all_close(maximum(a, b), std::vector<double>{2.0, kNaN, kNaN, kNaN, -2.0}, 0, 0));
    EXPECT_TRUE(all_close(minimum(a, b), std::vector<double>{1.0, kNaN, kNaN, kNaN, -2.0}, 0, 0));
    EXPECT_TRUE(all_close(maximum(b, a), std::vector<double>{2.0, kNaN, kNaN, kNaN, -2.0}, 0, 0));
    // comparisons with NaN are false, except ne
    EXPECT_EQ(values(eq(a, b)), (std::vector<double>{0, 0, 0, 0, 1}));
    EXPECT_EQ(values(ne(a, b)), (std::vector<double>{1, 1, 1, 1, 0}));
    EXPECT_EQ(values(lt(a, b)), (std::vector<double>{1, 0, 0, 0, 0}));
  }
}


TEST(Binary, IntegerAddSubMulAreExact) {
  for (DType dtype : {DType::i32, DType::i64}) {
    Generator gen(5);
    Tensor a = randint(-50, 50, {3, 1, 5}, dtype, Device::cpu(), &gen);
    Tensor b = randint(-50, 50, {4, 5}, dtype, Device::cpu(), &gen);
    for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::maximum, BinaryOp::lt}) {
      Tensor out = binary(op, a, b);
      EXPECT_EQ(out.dtype(), is_comparison(op) ? DType::boolean : dtype);
      EXPECT_EQ(values(out), ref_binary_all(op, a, b, {3, 4, 5})) << binary_op_name(op);
    }
    EXPECT_EQ(values(mul(non_contiguous(b), 3.0)), values(mul(b, from_vector<int>({3}, {}, dtype))));
  }
}

TEST(Binary, InPlaceAddAndMulWriteIntoTheirOperand) {
  Tensor a = random_tensor({3, 4}, DType::f32, -1, 1, 40);
  Tensor b = random_tensor({4}, DType::f32, -1, 1, 41);
  auto expected = ref_binary_all(BinaryOp::add, a, b, {3, 4});
  void* before = a.data_ptr();
  Tensor& r = add_(a, b);
  EXPECT_EQ(&r, &a);
  EXPECT_EQ(a.data_ptr(), before);
  EXPECT_TRUE(all_close(a, expected, 1e-6, 1e-7));
  for (double& e : expected) e *= 2.5;
  mul_(a, 2.5);
  EXPECT_TRUE(all_close(a, expected, 1e-6, 1e-7));
  // into a strided view: the base sees the writes
  Tensor base = random_tensor({4, 6}, DType::f64, -1, 1, 42);
  Tensor view = base.slice(1, 0, 6, 2);  // (4, 3), stride 2
  auto vbase = values(base);
  add_(view, ones({3}, DType::f64));
  auto after = values(base);
  for (int i = 0; i < 24; ++i) EXPECT_DOUBLE_EQ(after[i], vbase[i] + (i % 2 == 0 ? 1.0 : 0.0)) << i;
  // integers in place
  Tensor n = from_vector<int64_t>({1, 2, 3}, {3});
  add_(n, from_vector<int64_t>({10}, {1}));
  EXPECT_EQ(values(n), (std::vector<double>{11, 12, 13}));
  EXPECT_THROW(add_(b, a), Error);  // b [4] cannot hold a [3, 4]
}

TEST(Binary, ErrorsNameTheOpAndTheOperands) {
  Tensor a = zeros({2, 3}), b = zeros({4, 3}), d = zeros({2, 3}, DType::f64);
  EXPECT_MESSAGE(add(a, b), "add: shapes [2, 3] and [4, 3] cannot be broadcast");
  EXPECT_MESSAGE(mul(a, d), "mul: dtypes differ (f32 and f64)");
  EXPECT_MESSAGE(binary_into(BinaryOp::sub, zeros({2, 2}), a, a), "sub: output shape [2, 2] but operands broadcast to [2, 3]");
  EXPECT_MESSAGE(binary_into(BinaryOp::lt, zeros({2, 3}), a, a), "lt: output dtype f32, expected bool");
  EXPECT_MESSAGE(add(zeros({2}, DType::boolean), zeros({2}, DType::boolean)), "add: dtype bool not supported");
  EXPECT_MESSAGE(add(Tensor(), a), "add: undefined tensor");
}

// ---- unary ----------------------------------------------------------------------------

// Every op's values on every dtype and layout: the op harness (test_backend_ops.cpp).

TEST(Unary, EdgeValues) {
  Tensor x = from_vector<double>({0.0, -0.0, kInf, -kInf, kNaN}, {5});
  EXPECT_TRUE(all_close(relu(x.narrow(0, 0, 4)), std::vector<double>{0, 0, kInf, 0}, 0, 0));
  EXPECT_TRUE(all_close(exp(x), std::vector<double>{1, 1, kInf, 0, kNaN}, 0, 0));
  EXPECT_TRUE(all_close(sigmoid(x), std::vector<double>{0.5, 0.5, 1, 0, kNaN}, 0, 0));
  EXPECT_TRUE(all_close(tanh(x), std::vector<double>{0, 0, 1, -1, kNaN}, 0, 0));
  EXPECT_TRUE(all_close(relu6(x), std::vector<double>{0, 0, 6, 0, kNaN}, 0, 0));
  EXPECT_TRUE(all_close(relu(x), std::vector<double>{0, 0, kInf, 0, kNaN}, 0, 0));
  EXPECT_TRUE(all_close(log(from_vector<double>({0.0, -1.0}, {2})), std::vector<double>{-kInf, kNaN}, 0, 0));
  EXPECT_TRUE(all_close(sigmoid(from_vector<float>({-100.f, 100.f}, {2})), std::vector<double>{0, 1}, 0, 1e-30));
}


TEST(Unary, IntegerNegAndAbs) {
  for (DType dtype : {DType::i32, DType::i64}) {
    Tensor x = from_vector<int64_t>({-3, 0, 7, -1}, {2, 2}, dtype);
    EXPECT_EQ(values(neg(x)), (std::vector<double>{3, 0, -7, 1}));
    EXPECT_EQ(values(abs(non_contiguous(x))), (std::vector<double>{3, 0, 7, 1}));
    EXPECT_EQ(abs(x).dtype(), dtype);
  }
  EXPECT_MESSAGE(exp(zeros({2}, DType::i32)), "exp: dtype i32 not supported (expected a floating dtype)");
}

// ---- unary_backward -------------------------------------------------------------------

TEST(UnaryBackward, EveryRuleMatchesTheDerivative) {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    // bf16: the rules that read y see it rounded to 8 bits (1 - y² near y = 1 loses it all)
    Tol tol = dtype == DType::bf16 ? Tol{2e-2, 5e-3} : (dtype == DType::f64 ? Tol{1e-10, 1e-12} : tol_for(dtype));
    for (UnaryOp op : kUnaryOps) {
      SCOPED_TRACE(std::string(unary_op_name(op)) + " " + dtype_name(dtype));
      auto [lo, hi] = unary_range(op);
      Tensor x = random_tensor({4, 5}, dtype, lo, hi, 70);
      Tensor y = unary(op, x);
      Tensor g = random_tensor({4, 5}, dtype, -1, 1, 71);
      auto vx = values(x), vg = values(g);
      std::vector<double> expected(vx.size());
      for (size_t i = 0; i < vx.size(); ++i) expected[i] = vg[i] * ref_derivative(op, vx[i]);
      EXPECT_TRUE(all_close(unary_backward(op, g, x, y), expected, tol.rtol, tol.atol));
      // strided operands, and only the tensor the rule reads
      UnaryGradReads reads = unary_grad_reads(op);
      Tensor sx = reads == UnaryGradReads::input ? non_contiguous(x) : Tensor();
      Tensor sy = reads == UnaryGradReads::output ? non_contiguous(y) : Tensor();
      EXPECT_TRUE(all_close(unary_backward(op, non_contiguous(g), sx, sy), expected, tol.rtol, tol.atol));
      // an expanded gradient (stride 0), as a sum's backward produces
      Tensor row = random_tensor({5}, dtype, -1, 1, 72);
      auto vr = values(row);
      for (size_t i = 0; i < vx.size(); ++i) expected[i] = vr[i % 5] * ref_derivative(op, vx[i]);
      EXPECT_TRUE(all_close(unary_backward(op, row.expand({4, 5}), x, y), expected, tol.rtol, tol.atol));
    }
  }
}

// The contiguous f32/f64 path works through each thread's chunk in blocks of 2048 values (its
// temporaries on the stack): a length past several chunks and blocks, ending in a partial block.
TEST(UnaryBackward, LongContiguousTensorsMatchAcrossChunksAndBlocks) {
  const int64_t n = 3 * 16384 + 2048 + 777;
  for (DType dtype : {DType::f32, DType::f64}) {
    for (UnaryOp op : {UnaryOp::gelu, UnaryOp::silu, UnaryOp::gelu_tanh, UnaryOp::sigmoid}) {
      SCOPED_TRACE(std::string(unary_op_name(op)) + " " + dtype_name(dtype));
      Tol tol = dtype == DType::f64 ? Tol{1e-10, 1e-12} : tol_for(dtype);
      // gelu_tanh's rule cancels in 1 − t² where tanh is near ±1: absolute errors of ~1e-6 in f32
      if (op == UnaryOp::gelu_tanh && dtype == DType::f32) tol = Tol{1e-5, 5e-6};
      auto [lo, hi] = unary_range(op);
      Tensor x = random_tensor({n}, dtype, lo, hi, 73), g = random_tensor({n}, dtype, -1, 1, 74);
      Tensor y = unary(op, x);
      auto vx = values(x), vg = values(g);
      std::vector<double> expected(vx.size());
      for (size_t i = 0; i < vx.size(); ++i) expected[i] = vg[i] * ref_derivative(op, vx[i]);
      EXPECT_TRUE(all_close(unary_backward(op, g, x, y), expected, tol.rtol, tol.atol));
    }
  }
}

TEST(UnaryBackward, Errors) {
  Tensor x = ones({2, 3}), y = ones({2, 3});
  EXPECT_MESSAGE(unary_backward(UnaryOp::log, ones({3, 2}), x, y),
                 "log_backward: gradient has shape [3, 2] but the input x has [2, 3]");
  EXPECT_MESSAGE(unary_backward(UnaryOp::exp, ones({2, 3}), x, Tensor()), "exp_backward: needs the output y");
  EXPECT_MESSAGE(unary_backward(UnaryOp::relu, ones({2, 3}, DType::f64), x, y),
                 "relu_backward: gradient has dtype f64 but the input x has f32");
  EXPECT_MESSAGE(unary_backward(UnaryOp::neg, ones({2}, DType::i32), Tensor(), Tensor()),
                 "neg_backward: dtype i32 not supported");
}

// ---- clamp ----------------------------------------------------------------------------

TEST(Clamp, MatchesReferenceTwoAndOneSided) {
  const std::pair<double, double> bounds[] = {{-0.5, 0.7}, {-kInf, 0.3}, {-0.3, kInf}, {0.25, 0.25}};
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    Tol tol = tol_for(dtype);
    for (auto [lo, hi] : bounds) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      Tensor x = random_tensor({3, 4, 5}, dtype, -2, 2, 80);
      std::vector<double> expected;
      for (double v : values(x)) expected.push_back(std::min(std::max(v, lo), hi));
      EXPECT_TRUE(all_close(clamp(x, lo, hi), expected, tol.rtol, tol.atol));
      EXPECT_TRUE(all_close(clamp(non_contiguous(x), lo, hi), expected, tol.rtol, tol.atol));
    }
  }
  EXPECT_TRUE(all_close(clamp(from_vector<double>({kNaN, -kInf, kInf}, {3}), -1, 1), std::vector<double>{kNaN, -1, 1}, 0, 0));
  // integers keep the integers inside [lo, hi]
  Tensor n = from_vector<int32_t>({-9, -3, 0, 2, 3, 9}, {6});
  EXPECT_EQ(values(clamp(n, -3.5, 2.5)), (std::vector<double>{-3, -3, 0, 2, 2, 2}));
  EXPECT_EQ(values(clamp(n, -kInf, 1)), (std::vector<double>{-9, -3, 0, 1, 1, 1}));
  EXPECT_EQ(clamp(n, 0, 1).dtype(), DType::i32);
}

TEST(Clamp, BackwardPassesGradientInsideTheBoundsIncludingOnThem) {
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor x = from_vector<double>({-1.0, -0.5, 0.0, 0.3, 0.5, 0.9}, {2, 3}, dtype);
    Tensor g = random_tensor({2, 3}, dtype, 0.5, 1.5, 81);
    auto vg = values(g);
    EXPECT_TRUE(all_close(clamp_backward(g, x, -0.5, 0.5), std::vector<double>{0, vg[1], vg[2], vg[3], vg[4], 0}, 0, 0));
    EXPECT_TRUE(all_close(clamp_backward(non_contiguous(g), non_contiguous(x), -kInf, 0.0),
                          std::vector<double>{vg[0], vg[1], vg[2], 0, 0, 0}, 0, 0));
  }
}

TEST(Clamp, Errors) {
  EXPECT_MESSAGE(clamp(ones({2}), 1.0, 0.0), "clamp: lo 1 is greater than hi 0");
  EXPECT_MESSAGE(clamp(ones({2}), kNaN, 0.0), "clamp: bounds must not be NaN");
  EXPECT_MESSAGE(clamp(ones({2}, DType::boolean), 0, 1), "clamp: dtype bool not supported");
  EXPECT_MESSAGE(clamp_backward(ones({2}), ones({3}), 0, 1), "clamp_backward: gradient has shape [2] but x has [3]");
  EXPECT_MESSAGE(clamp_backward(ones({2}, DType::i64), ones({2}, DType::i64), 0, 1),
                 "clamp_backward: dtype i64 not supported");
}

// ---- where ----------------------------------------------------------------------------

TEST(Where, ThreeWayBroadcastingMatchesReference) {
  struct Case {
    Shape cond, a, b, out;
  };
  const Case cases[] = {{{3, 1, 5}, {4, 1}, {5}, {3, 4, 5}}, {{4, 5}, {4, 5}, {4, 5}, {4, 5}},
                        {{5}, {4, 5}, {}, {4, 5}},           {{}, {2, 3}, {2, 1}, {2, 3}}};
  for (DType dtype : {DType::f32, DType::f64, DType::i64}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " cond " + shape_str(c.cond));
      Tensor cond = gt(random_tensor(c.cond, DType::f64, -1, 1, 90), 0.0);
      Tensor a = random_tensor(c.a, DType::f64, -50, 50, 91).to(dtype);
      Tensor b = random_tensor(c.b, DType::f64, -50, 50, 92).to(dtype);
      auto vc = values(cond), va = values(a), vb = values(b);
      std::vector<double> expected(static_cast<size_t>(shape_numel(c.out)));
      for (int64_t i = 0; i < shape_numel(c.out); ++i)
        expected[i] = vc[broadcast_index(c.out, c.cond, i)] != 0 ? va[broadcast_index(c.out, c.a, i)]
                                                                 : vb[broadcast_index(c.out, c.b, i)];
      Tensor out = where(cond, a, b);
      EXPECT_EQ(out.shape(), c.out);
      EXPECT_EQ(out.dtype(), dtype);
      EXPECT_TRUE(all_close(out, expected, 0, 0));
      EXPECT_TRUE(all_close(where(non_contiguous(cond), non_contiguous(a), non_contiguous(b)), expected, 0, 0));
    }
  }
  Tensor cond = from_vector<double>({1, 0, 1}, {3}, DType::boolean);
  Tensor x = from_vector<float>({1, 2, 3}, {3});
  EXPECT_EQ(values(where(cond, x, -1.0)), (std::vector<double>{1, -1, 3}));
  EXPECT_EQ(values(where(cond, 0.5, x)), (std::vector<double>{0.5, 2, 0.5}));
}

TEST(Where, Errors) {
  Tensor c = from_vector<double>({1, 0}, {2}, DType::boolean);
  EXPECT_MESSAGE(where(ones({2}), ones({2}), ones({2})), "where: condition has dtype f32 (expected bool");
  EXPECT_MESSAGE(where(c, ones({2}), ones({2}, DType::f64)), "where: dtypes differ (f32 and f64)");
  EXPECT_MESSAGE(where(c, ones({3}), ones({2})), "where: shapes [2] and [3] cannot be broadcast");
}

// ---- CUDA against the CPU -------------------------------------------------------------

namespace {
// The same values on the GPU, through a strided layout when `strided`.
Tensor on_cuda(const Tensor& t, bool strided = false) {
  Tensor d = t.to(Device::cuda(0));
  return strided ? non_contiguous(d) : d;
}
Tol cuda_tol(DType d) { return d == DType::bf16 || d == DType::f16 ? Tol{1e-2, 1e-3} : Tol{1e-5, 1e-6}; }
}  // namespace

TEST(Cuda, InPlaceBinaryAndDeviceErrors) {  // every op against the reference: the op harness
  EMBER_REQUIRE_CUDA();
  Tensor a = random_tensor({64, 33}, DType::f32, -1, 1, 101), b = random_tensor({33}, DType::f32, -1, 1, 102);
  Tensor da = on_cuda(a);
  add_(da, on_cuda(b));
  mul_(da, 3.0);
  EXPECT_TRUE(all_close(da.cpu(), mul(add(a, b), 3.0), 1e-6, 1e-7));
  EXPECT_MESSAGE(add(a, on_cuda(a)), "add: tensors on different devices (cpu and cuda:0)");
}

TEST(Cuda, UnaryAndUnaryBackwardMatchCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tol tol = cuda_tol(dtype);
    for (UnaryOp op : kUnaryOps) {
      SCOPED_TRACE(std::string(unary_op_name(op)) + " " + dtype_name(dtype));
      auto [lo, hi] = unary_range(op);
      Tensor x = random_tensor({17, 29}, dtype, lo, hi, 110);
      Tensor g = random_tensor({17, 29}, dtype, -1, 1, 111);
      Tensor y = unary(op, x);
      for (bool strided : {false, true}) {
        Tensor dy = unary(op, on_cuda(x, strided));
        EXPECT_TRUE(all_close(dy.cpu(), y, tol.rtol, tol.atol));
        Tensor dx = unary_backward(op, on_cuda(g, strided), on_cuda(x, strided), on_cuda(y, strided));
        EXPECT_TRUE(all_close(dx.cpu(), unary_backward(op, g, x, y), tol.rtol, tol.atol));
      }
    }
  }
  Tensor n = from_vector<int64_t>({-3, 0, 7}, {3});
  EXPECT_EQ(values(abs(on_cuda(n)).cpu()), (std::vector<double>{3, 0, 7}));
  EXPECT_EQ(values(neg(on_cuda(n, true)).cpu()), (std::vector<double>{3, 0, -7}));
}

TEST(Cuda, ClampAndWhereMatchCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor x = random_tensor({9, 31}, dtype, -2, 2, 120);
    Tensor g = random_tensor({9, 31}, dtype, -1, 1, 121);
    for (bool strided : {false, true}) {
      EXPECT_TRUE(all_close(clamp(on_cuda(x, strided), -0.5, 0.7).cpu(), clamp(x, -0.5, 0.7), 0, 0));
      EXPECT_TRUE(all_close(clamp(on_cuda(x, strided), -kInf, 0.1).cpu(), clamp(x, -kInf, 0.1), 0, 0));
      EXPECT_TRUE(all_close(clamp_backward(on_cuda(g, strided), on_cuda(x, strided), -0.5, 0.7).cpu(),
                            clamp_backward(g, x, -0.5, 0.7), 0, 0));
    }
    Tensor cond = gt(random_tensor({3, 1, 31}, DType::f64, -1, 1, 122), 0.0);
    Tensor b = random_tensor({31}, dtype, -1, 1, 123);
    EXPECT_TRUE(all_close(where(on_cuda(cond), on_cuda(x), on_cuda(b)).cpu(), where(cond, x, b), 0, 0));
    EXPECT_TRUE(all_close(where(on_cuda(cond, true), on_cuda(x, true), on_cuda(b, true)).cpu(), where(cond, x, b), 0, 0));
  }
  Tensor n = from_vector<int32_t>({-9, 0, 9}, {3});
  EXPECT_EQ(values(clamp(on_cuda(n), -3.5, 2.5).cpu()), (std::vector<double>{-3, 0, 2}));
}
