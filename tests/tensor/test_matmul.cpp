// matmul and linear: forward against float64 loops written out here, layouts (transposed,
// sliced, broadcast), gradients by finite differences, error messages, and CUDA (every
// kernel version and cuBLAS) against the CPU.
#include <string>

#include "tests/support/test_util.h"

using ember::testing::error_of;

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

// NumPy matmul by definition, in float64: 1-D operands promoted (and the 1 dropped from the
// result), batch dims broadcast.
struct Reference {
  Shape shape;
  std::vector<double> data;
};

Reference reference_matmul(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  EXPECT_EQ(k, bs[bs.size() - 2]);
  Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  const size_t nb = std::max(abatch.size(), bbatch.size());
  abatch.insert(abatch.begin(), nb - abatch.size(), 1);
  bbatch.insert(bbatch.begin(), nb - bbatch.size(), 1);
  Shape batch(nb);
  for (size_t d = 0; d < nb; ++d) batch[d] = std::max(abatch[d], bbatch[d]);
  int64_t count = 1;
  for (int64_t s : batch) count *= s;
  std::vector<double> av = values(a), bv = values(b), out(count * m * n);
  for (int64_t idx = 0; idx < count; ++idx) {
    int64_t rem = idx, ai = 0, bi = 0, astride = 1, bstride = 1;
    for (int64_t d = static_cast<int64_t>(nb) - 1; d >= 0; --d) {
      int64_t i = rem % batch[d];
      rem /= batch[d];
      ai += (abatch[d] == 1 ? 0 : i) * astride;
      bi += (bbatch[d] == 1 ? 0 : i) * bstride;
      astride *= abatch[d];
      bstride *= bbatch[d];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += av[(ai * m + i) * k + p] * bv[(bi * k + p) * n + j];
        out[(idx * m + i) * n + j] = s;
      }
  }
  Shape shape = batch;
  if (a.dim() > 1) shape.push_back(m);
  if (b.dim() > 1) shape.push_back(n);
  return {shape, out};
}

// y = x · wᵀ + bias, rows of x by rows of w.
std::vector<double> reference_linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  std::vector<double> xv = values(x), wv = values(w), bv, y(rows * out);
  if (bias.defined()) bv = values(bias);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias.defined() ? bv[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += xv[r * in + i] * wv[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

void expect_matmul_matches(const Tensor& a, const Tensor& b, double rtol, double atol) {
  Reference ref = reference_matmul(a, b);
  Tensor out = matmul(a, b);
  EXPECT_EQ(out.shape(), ref.shape) << "a " << a.shape_str() << " b " << b.shape_str();
  EXPECT_TRUE(all_close(out, ref.data, rtol, atol)) << "a " << a.shape_str() << " b " << b.shape_str();
}


}  // namespace

TEST(Matmul, TwoDimensionalMatchesLoops) {
  for (DType dt : {DType::f64, DType::f32}) {
    const double rtol = dt == DType::f64 ? 1e-12 : 1e-4, atol = dt == DType::f64 ? 1e-12 : 1e-5;
    for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{3, 4, 5}, {1, 1, 1}, {17, 33, 9}, {64, 70, 65}, {1, 8, 7}, {6, 5, 1}}) {
      Tensor a = random_tensor({m, k}, dt, -1, 1, 1 + m), b = random_tensor({k, n}, dt, -1, 1, 2 + n);
      expect_matmul_matches(a, b, rtol, atol);
    }
  }
}

TEST(Matmul, OneDimensionalOperandsArePromotedAndSqueezed) {
  Tensor v4 = random_tensor({4}, DType::f64, -1, 1, 3);
  expect_matmul_matches(v4, random_tensor({4, 5}), 1e-12, 1e-12);             // (4)·(4, 5) -> (5)
  expect_matmul_matches(random_tensor({3, 4}), v4, 1e-12, 1e-12);             // (3, 4)·(4) -> (3)
  expect_matmul_matches(v4, random_tensor({4}, DType::f64, -1, 1, 9), 1e-12, 1e-12);  // -> ()
  expect_matmul_matches(random_tensor({2, 3, 4}), v4, 1e-12, 1e-12);          // -> (2, 3)
  expect_matmul_matches(v4, random_tensor({2, 4, 5}), 1e-12, 1e-12);          // -> (2, 5)
  EXPECT_EQ(matmul(v4, v4).shape(), Shape{});
}

TEST(Matmul, BatchDimsBroadcast) {
  expect_matmul_matches(random_tensor({2, 1, 3, 4}, DType::f64, -1, 1, 5), random_tensor({5, 4, 6}), 1e-12, 1e-12);
  expect_matmul_matches(random_tensor({3, 4}), random_tensor({2, 4, 5}, DType::f64, -1, 1, 6), 1e-12, 1e-12);
  expect_matmul_matches(random_tensor({2, 3, 4}), random_tensor({4, 5}, DType::f64, -1, 1, 7), 1e-12, 1e-12);
  expect_matmul_matches(random_tensor({1, 3, 4}), random_tensor({2, 4, 5}, DType::f64, -1, 1, 8), 1e-12, 1e-12);
  expect_matmul_matches(random_tensor({2, 3, 1, 4}), random_tensor({3, 4, 2}, DType::f64, -1, 1, 8), 1e-12, 1e-12);
  expect_matmul_matches(random_tensor({4, 1, 3, 5, 4}, DType::f32), random_tensor({2, 1, 4, 6}, DType::f32, -1, 1, 4),
                        1e-4, 1e-5);
}

TEST(Matmul, TransposedSlicedAndExpandedOperands) {
  Tensor x = random_tensor({7, 5}, DType::f64, -1, 1, 11), y = random_tensor({6, 7}, DType::f64, -1, 1, 12);
  expect_matmul_matches(x.t(), y.t(), 1e-12, 1e-12);                 // both column-major, read in place
  expect_matmul_matches(y, x, 1e-12, 1e-12);
  expect_matmul_matches(non_contiguous(y), non_contiguous(x), 1e-12, 1e-12);
  Tensor wide = random_tensor({6, 16}, DType::f64, -1, 1, 13);
  expect_matmul_matches(wide.narrow(1, 3, 7), x, 1e-12, 1e-12);      // row stride 16 > 7 columns
  expect_matmul_matches(wide.slice(1, 0, 14, 2), x, 1e-12, 1e-12);   // column step 2: copied
  Tensor row = random_tensor({1, 7}, DType::f64, -1, 1, 14);
  expect_matmul_matches(row.expand({4, 7}), x, 1e-12, 1e-12);        // row stride 0: copied
  // batched: non_contiguous puts the batch dim innermost in memory, so matrices are copied
  Tensor a3 = random_tensor({3, 4, 5}, DType::f32, -1, 1, 15), b3 = random_tensor({3, 5, 2}, DType::f32, -1, 1, 16);
  expect_matmul_matches(non_contiguous(a3), b3, 1e-4, 1e-5);
  expect_matmul_matches(a3, b3.transpose(0, 1).contiguous().transpose(0, 1), 1e-4, 1e-5);  // batch stride ≠ k·n
  expect_matmul_matches(a3.transpose(1, 2).contiguous().transpose(1, 2), b3, 1e-4, 1e-5);   // column-major batch
}

TEST(Matmul, LargeProductsUseBothThreadingPaths) {
  // one big product (Eigen's threads), a batch split across threads, and a batch of 3 large
  // ones that Eigen threads one by one
  expect_matmul_matches(random_tensor({130, 257}, DType::f32), random_tensor({257, 140}, DType::f32, -1, 1, 2), 1e-4,
                        1e-4);
  expect_matmul_matches(random_tensor({16, 20, 30}, DType::f32), random_tensor({16, 30, 10}, DType::f32, -1, 1, 3),
                        1e-4, 1e-5);
  expect_matmul_matches(random_tensor({3, 130, 130}, DType::f64), random_tensor({3, 130, 130}, DType::f64, -1, 1, 4),
                        1e-12, 1e-12);
}

TEST(Matmul, PanelsSplitAcrossThreadsCoverTheOutput) {
  // 3 threads: uneven bands of rows (m >= n) or columns (m < n), operands in both layouts
  const int saved = cpu::num_threads();
  cpu::set_num_threads(3);
  Tensor tall = random_tensor({203, 45}, DType::f64, -1, 1, 31), wide = random_tensor({45, 190}, DType::f64, -1, 1, 32);
  expect_matmul_matches(tall, wide.narrow(1, 0, 50), 1e-12, 1e-12);                  // rows
  expect_matmul_matches(tall.narrow(0, 0, 60), wide, 1e-12, 1e-12);                  // columns
  expect_matmul_matches(tall.t().contiguous().t(), wide.t().contiguous().t(), 1e-12, 1e-12);
  Tensor w = random_tensor({70, 45}, DType::f64, -1, 1, 33), b = random_tensor({70}, DType::f64, -1, 1, 34);
  EXPECT_TRUE(all_close(linear(tall, w, b), reference_linear(tall, w, b), 1e-12, 1e-12));
  Tensor x = random_tensor({40, 45}, DType::f64, -1, 1, 35), w2 = random_tensor({300, 45}, DType::f64, -1, 1, 36);
  Tensor b2 = random_tensor({300}, DType::f64, -1, 1, 37);
  EXPECT_TRUE(all_close(linear(x, w2, b2), reference_linear(x, w2, b2), 1e-12, 1e-12));  // column bands + bias
  cpu::set_num_threads(saved);
}

TEST(Matmul, EmptyDims) {
  EXPECT_EQ(matmul(zeros({0, 3}), zeros({3, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(matmul(zeros({2, 0, 3}), zeros({3, 4})).shape(), (Shape{2, 0, 4}));
  Tensor z = matmul(random_tensor({3, 0}), random_tensor({0, 2}));  // empty sum
  EXPECT_EQ(values(z), (std::vector<double>(6, 0.0)));
  Tensor bias = random_tensor({2}, DType::f64, -1, 1, 5);
  Tensor y = linear(random_tensor({3, 0}), random_tensor({2, 0}), bias);
  EXPECT_TRUE(all_close(y, bias.expand({3, 2}).contiguous(), 0, 0));
}

TEST(Linear, MatchesLoopsWithAndWithoutBias) {
  for (DType dt : {DType::f64, DType::f32}) {
    const double rtol = dt == DType::f64 ? 1e-12 : 1e-4, atol = dt == DType::f64 ? 1e-12 : 1e-5;
    Tensor x = random_tensor({2, 3, 5}, dt, -1, 1, 21), w = random_tensor({4, 5}, dt, -1, 1, 22);
    Tensor b = random_tensor({4}, dt, -1, 1, 23);
    Tensor y = linear(x, w, b);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
    EXPECT_TRUE(all_close(y, reference_linear(x, w, b), rtol, atol));
    EXPECT_TRUE(all_close(linear(x, w), reference_linear(x, w, Tensor()), rtol, atol));
    // non-contiguous x, transposed-storage weight, 1-D x
    EXPECT_TRUE(all_close(linear(non_contiguous(x), non_contiguous(w), b), reference_linear(x, w, b), rtol, atol));
    Tensor x1 = random_tensor({5}, dt, -1, 1, 24);
    EXPECT_EQ(linear(x1, w, b).shape(), (Shape{4}));
    EXPECT_TRUE(all_close(linear(x1, w, b), reference_linear(x1, w, b), rtol, atol));
    // ViT-like rows, big enough for Eigen's threads
    Tensor xb = random_tensor({130, 96}, dt, -1, 1, 25), wb = random_tensor({80, 96}, dt, -1, 1, 26);
    Tensor bb = random_tensor({80}, dt, -1, 1, 27);
    EXPECT_TRUE(all_close(linear(xb, wb, bb), reference_linear(xb, wb, bb), rtol, atol));
  }
}

TEST(Matmul, ErrorsNameTheProblem) {
  Tensor a = random_tensor({2, 3}), b = random_tensor({4, 5});
  EXPECT_NE(error_of([&] { matmul(a, b); }).find("matmul: inner dimensions differ: a [2, 3] has K = 3 but b [4, 5] has K = 4"),
            std::string::npos)
      << error_of([&] { matmul(a, b); });
  EXPECT_NE(error_of([&] { matmul(random_tensor({2, 3, 4}), random_tensor({3, 4, 5})); }).find("matmul: shapes [2] and [3] cannot be broadcast"),
            std::string::npos);
  EXPECT_NE(error_of([&] { matmul(a, random_tensor({3, 2}, DType::f32)); }).find("matmul: dtypes differ (a is f64, b is f32)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { matmul(scalar_tensor(1.0, DType::f64), a); }).find("matmul: operands need at least 1 dim"),
            std::string::npos);
  EXPECT_NE(error_of([&] { matmul(a.to(DType::i64), a.t().to(DType::i64)); }).find("dtype i64 not supported"),
            std::string::npos);
  EXPECT_NE(error_of([&] { matmul(a.to(DType::bf16), a.t().to(DType::bf16)); }).find("matmul: dtype bf16 not supported on the CPU"),
            std::string::npos);
  EXPECT_NE(error_of([&] { linear(random_tensor({2, 5}), random_tensor({4, 6})); }).find("linear: x [2, 5] has 5 features but weight [4, 6] expects 6"),
            std::string::npos);
  EXPECT_NE(error_of([&] { linear(random_tensor({2, 5}), random_tensor({4, 5, 1})); }).find("linear: weight must be (out, in)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { linear(random_tensor({2, 5}), random_tensor({4, 5}), random_tensor({3})); }).find("linear: bias must be (4)"),
            std::string::npos);
  EXPECT_THROW(set_matmul_kernel(4), Error);
}

// ---- autograd -------------------------------------------------------------------------

TEST(MatmulGrad, FiniteDifferences) {
  auto mm = [](const std::vector<Variable>& v) { return matmul(v[0], v[1]); };
  auto var = [](const Shape& s, uint64_t seed) { return Variable(random_tensor(s, DType::f64, -1, 1, seed), true); };
  EXPECT_TRUE(gradcheck(mm, {var({3, 4}, 1), var({4, 2}, 2)}));
  EXPECT_TRUE(gradcheck(mm, {var({2, 1, 3, 4}, 3), var({5, 4, 6}, 4)}));  // broadcast grads summed back
  EXPECT_TRUE(gradcheck(mm, {var({2, 3, 4}, 5), var({4, 2}, 6)}));        // shared b: one stacked product
  EXPECT_TRUE(gradcheck(mm, {var({3, 4}, 7), var({2, 4, 2}, 8)}));        // shared a
  EXPECT_TRUE(gradcheck(mm, {var({4}, 9), var({4, 3}, 10)}));
  EXPECT_TRUE(gradcheck(mm, {var({2, 3, 4}, 11), var({4}, 12)}));
  EXPECT_TRUE(gradcheck(mm, {var({4}, 13), var({4}, 14)}));
  // transposed inputs
  Variable a(random_tensor({4, 3}, DType::f64, -1, 1, 15), true), b(random_tensor({2, 4}, DType::f64, -1, 1, 16), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return matmul(v[0], v[1]); },
                        {Variable(a.data().t(), true), Variable(b.data().t(), true)}));
}

TEST(LinearGrad, FiniteDifferencesWithAndWithoutBias) {
  auto var = [](const Shape& s, uint64_t seed) { return Variable(random_tensor(s, DType::f64, -1, 1, seed), true); };
  auto with_bias = [](const std::vector<Variable>& v) { return linear(v[0], v[1], v[2]); };
  auto no_bias = [](const std::vector<Variable>& v) { return linear(v[0], v[1]); };
  EXPECT_TRUE(gradcheck(with_bias, {var({2, 3, 5}, 1), var({4, 5}, 2), var({4}, 3)}));
  EXPECT_TRUE(gradcheck(no_bias, {var({3, 5}, 4), var({4, 5}, 5)}));
  EXPECT_TRUE(gradcheck(with_bias, {var({5}, 6), var({2, 5}, 7), var({2}, 8)}));
  // only the weight wants a gradient
  Variable x(random_tensor({3, 5}, DType::f64, -1, 1, 9));
  EXPECT_TRUE(gradcheck(with_bias, {x, var({4, 5}, 10), Variable(random_tensor({4}, DType::f64, -1, 1, 11))}));
}

// ---- CUDA ---------------------------------------------------------------------------------

namespace {

// Restores the process-wide matmul settings when a test ends.
struct MatmulSettingsGuard {
  MatmulBackend backend = matmul_backend();
  int kernel = matmul_kernel();
  ~MatmulSettingsGuard() {
    set_matmul_backend(backend);
    set_matmul_kernel(kernel);
  }
};

double cuda_rtol(DType dt) { return dt == DType::f64 ? 1e-10 : dt == DType::f32 ? 1e-4 : 2e-2; }

enum class Layout { row_major, col_major, strided };

// t (..., r, c) on CUDA in dtype dt, laid out as asked: contiguous, a transposed view of a
// contiguous buffer, or a layout the kernels cannot read (copied by matmul).
Tensor on_cuda(const Tensor& t, DType dt, Layout layout) {
  if (layout == Layout::row_major) return t.to(dt).to(Device::cuda(0));
  if (layout == Layout::col_major) return t.transpose(-2, -1).contiguous().to(dt).to(Device::cuda(0)).transpose(-2, -1);
  return non_contiguous(t.to(dt).to(Device::cuda(0)));
}

// The product on CUDA in `dt` against the CPU's f64 product of the same dtype-rounded values.
void expect_cuda_matches(const Tensor& a, const Tensor& b, DType dt, const std::string& what,
                         Layout la = Layout::row_major, Layout lb = Layout::row_major) {
  Tensor expected = matmul(a.to(dt).to(DType::f64), b.to(dt).to(DType::f64));
  Tensor got = matmul(on_cuda(a, dt, la), on_cuda(b, dt, lb));
  EXPECT_EQ(got.dtype(), dt) << what;
  EXPECT_TRUE(all_close(got.cpu().to(DType::f64), expected, cuda_rtol(dt), cuda_rtol(dt))) << what;
}

}  // namespace

TEST(MatmulCuda, EveryKernelAndCublasMatchCpu) {
  EMBER_REQUIRE_CUDA();
  MatmulSettingsGuard restore;
  struct Setting {
    MatmulBackend backend;
    int kernel;
  };
  std::vector<Setting> settings{{MatmulBackend::native, 1}, {MatmulBackend::native, 2}, {MatmulBackend::native, 3},
                                {MatmulBackend::cublas, 3}};
  const Layout layouts[] = {Layout::row_major, Layout::col_major};
  for (const Setting& s : settings) {
    set_matmul_backend(s.backend);
    set_matmul_kernel(s.kernel);
    const std::string name = std::string(matmul_backend_name(s.backend)) + " kernel " + std::to_string(s.kernel);
    for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      const std::string what = name + " " + dtype_name(dt);
      // odd sizes (scalar loads, partial tiles), multiples of 4 (float4 loads), several tiles
      for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {37, 19, 53}, {128, 64, 128}, {260, 136, 132}, {5, 300, 3}}) {
        Tensor a = random_tensor({m, k}, DType::f64, -1, 1, m + k), b = random_tensor({k, n}, DType::f64, -1, 1, k + n);
        for (Layout la : layouts)
          for (Layout lb : layouts)
            expect_cuda_matches(a, b, dt, what + " " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                                std::to_string(n) + " layouts " + std::to_string(int(la)) + std::to_string(int(lb)), la, lb);
      }
      expect_cuda_matches(random_tensor({2, 1, 33, 20}), random_tensor({3, 20, 36}, DType::f64, -1, 1, 5), dt,
                          what + " broadcast batch");
      expect_cuda_matches(random_tensor({3, 40, 24}), random_tensor({24, 12}), dt, what + " shared b");
      expect_cuda_matches(random_tensor({3, 40, 24}), random_tensor({24, 12}), dt, what + " shared b, a col-major",
                          Layout::col_major, Layout::row_major);
      expect_cuda_matches(random_tensor({16}), random_tensor({4, 16, 8}), dt, what + " 1-D a");
      expect_cuda_matches(random_tensor({3, 9, 8}), random_tensor({3, 8, 4}), dt, what + " copied a", Layout::strided);
    }
    // linear: bias in the epilogue (native) or preloaded (cuBLAS)
    Tensor x = random_tensor({2, 70, 48}, DType::f32), w = random_tensor({36, 48}, DType::f32, -1, 1, 2);
    Tensor bias = random_tensor({36}, DType::f32, -1, 1, 3);
    Tensor y = linear(x.to(Device::cuda(0)), w.to(Device::cuda(0)), bias.to(Device::cuda(0)));
    EXPECT_TRUE(all_close(y.cpu(), linear(x, w, bias), 1e-4, 1e-4)) << name << " linear";
    Tensor y0 = linear(x.to(Device::cuda(0)), w.to(Device::cuda(0)));
    EXPECT_TRUE(all_close(y0.cpu(), linear(x, w), 1e-4, 1e-4)) << name << " linear without bias";
  }
}

TEST(MatmulCuda, GradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Tensor a = random_tensor({2, 1, 5, 6}, DType::f32), b = random_tensor({3, 6, 4}, DType::f32, -1, 1, 2);
  Tensor g = random_tensor({2, 3, 5, 4}, DType::f32, -1, 1, 3);
  auto run = [&](Device dev) {
    Variable va(a.to(dev), true), vb(b.to(dev), true);
    matmul(va, vb).backward(g.to(dev));
    return std::make_pair(va.grad().cpu(), vb.grad().cpu());
  };
  auto [ga, gb] = run(Device::cuda(0));
  auto [ca, cb] = run(Device::cpu());
  EXPECT_TRUE(all_close(ga, ca, 1e-4, 1e-5));
  EXPECT_TRUE(all_close(gb, cb, 1e-4, 1e-5));
}
