// Pooling (max, avg, adaptive avg) and bilinear interpolation: forward and backward kernels
// against float64 references written here, autograd gradchecks, errors, and CUDA vs CPU.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/test_util.h"

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {

struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
};

// ---- references: plain loops over (plane, oh, ow, window) in double ----------------------

struct PoolRef {
  int64_t planes, H, W, OH, OW;
};

PoolRef window_ref_shape(const Shape& xs, const Window& k) {
  return {xs[0] * xs[1], xs[2], xs[3], (xs[2] + 2 * k.ph - k.kh) / k.sh + 1, (xs[3] + 2 * k.pw - k.kw) / k.sw + 1};
}

// out and the argmax (y·W + z, first on ties) of each window.
void ref_max_pool(const std::vector<double>& x, const PoolRef& r, const Window& k, std::vector<double>& out,
                  std::vector<int64_t>& arg) {
  out.assign(r.planes * r.OH * r.OW, 0.0);
  arg.assign(out.size(), -1);
  for (int64_t p = 0; p < r.planes; ++p)
    for (int64_t oh = 0; oh < r.OH; ++oh)
      for (int64_t ow = 0; ow < r.OW; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t best_i = -1;
        for (int64_t i = 0; i < k.kh; ++i)
          for (int64_t j = 0; j < k.kw; ++j) {
            int64_t y = oh * k.sh - k.ph + i, z = ow * k.sw - k.pw + j;
            if (y < 0 || y >= r.H || z < 0 || z >= r.W) continue;
            double v = x[(p * r.H + y) * r.W + z];
            if (best_i < 0 || v > best) best = v, best_i = y * r.W + z;
          }
        out[(p * r.OH + oh) * r.OW + ow] = best;
        arg[(p * r.OH + oh) * r.OW + ow] = best_i;
      }
}

std::vector<double> ref_max_pool_grad(const std::vector<double>& g, const std::vector<int64_t>& arg, const PoolRef& r) {
  std::vector<double> dx(r.planes * r.H * r.W, 0.0);
  for (int64_t p = 0; p < r.planes; ++p)
    for (int64_t k = 0; k < r.OH * r.OW; ++k) dx[p * r.H * r.W + arg[p * r.OH * r.OW + k]] += g[p * r.OH * r.OW + k];
  return dx;
}

// Calls f(x index, out index, weight) for every (window, element) pair of an average pool.
void for_each_avg_tap(const PoolRef& r, const Window& k, const std::function<void(int64_t, int64_t, double)>& f) {
  for (int64_t p = 0; p < r.planes; ++p)
    for (int64_t oh = 0; oh < r.OH; ++oh)
      for (int64_t ow = 0; ow < r.OW; ++ow)
        for (int64_t i = 0; i < k.kh; ++i)
          for (int64_t j = 0; j < k.kw; ++j) {
            int64_t y = oh * k.sh - k.ph + i, z = ow * k.sw - k.pw + j;
            if (y < 0 || y >= r.H || z < 0 || z >= r.W) continue;
            f((p * r.H + y) * r.W + z, (p * r.OH + oh) * r.OW + ow, 1.0 / double(k.kh * k.kw));
          }
}

// PyTorch's adaptive windows: [floor(o·in/out), ceil((o+1)·in/out)).
void for_each_adaptive_tap(const PoolRef& r, const std::function<void(int64_t, int64_t, double)>& f) {
  for (int64_t p = 0; p < r.planes; ++p)
    for (int64_t oh = 0; oh < r.OH; ++oh)
      for (int64_t ow = 0; ow < r.OW; ++ow) {
        int64_t h0 = int64_t(std::floor(double(oh * r.H) / r.OH)), h1 = int64_t(std::ceil(double((oh + 1) * r.H) / r.OH));
        int64_t w0 = int64_t(std::floor(double(ow * r.W) / r.OW)), w1 = int64_t(std::ceil(double((ow + 1) * r.W) / r.OW));
        for (int64_t y = h0; y < h1; ++y)
          for (int64_t z = w0; z < w1; ++z)
            f((p * r.H + y) * r.W + z, (p * r.OH + oh) * r.OW + ow, 1.0 / double((h1 - h0) * (w1 - w0)));
      }
}

// PyTorch's bilinear taps, in double.
void bilinear_axis(int64_t o, int64_t in, int64_t out, bool align, int64_t& i0, int64_t& i1, double& lambda) {
  double src;
  if (in == out) src = double(o);
  else if (align) src = out > 1 ? o * double(in - 1) / double(out - 1) : 0.0;
  else src = std::max((o + 0.5) * double(in) / double(out) - 0.5, 0.0);
  i0 = std::min<int64_t>(int64_t(std::floor(src)), in - 1);
  i1 = std::min<int64_t>(i0 + 1, in - 1);
  lambda = src - double(i0);
}

void for_each_bilinear_tap(const PoolRef& r, bool align, const std::function<void(int64_t, int64_t, double)>& f) {
  for (int64_t p = 0; p < r.planes; ++p)
    for (int64_t oh = 0; oh < r.OH; ++oh)
      for (int64_t ow = 0; ow < r.OW; ++ow) {
        int64_t h0, h1, w0, w1;
        double lh, lw;
        bilinear_axis(oh, r.H, r.OH, align, h0, h1, lh);
        bilinear_axis(ow, r.W, r.OW, align, w0, w1, lw);
        int64_t o = (p * r.OH + oh) * r.OW + ow;
        auto at = [&](int64_t y, int64_t z) { return (p * r.H + y) * r.W + z; };
        f(at(h0, w0), o, (1 - lh) * (1 - lw));
        f(at(h0, w1), o, (1 - lh) * lw);
        f(at(h1, w0), o, lh * (1 - lw));
        f(at(h1, w1), o, lh * lw);
      }
}

// out[o] = Σ weight·x[i] over the taps; dx[i] = Σ weight·g[o].
using TapFn = std::function<void(const std::function<void(int64_t, int64_t, double)>&)>;
std::vector<double> apply_taps(const TapFn& taps, const std::vector<double>& x, size_t out_size) {
  std::vector<double> out(out_size, 0.0);
  taps([&](int64_t xi, int64_t oi, double wgt) { out[oi] += wgt * x[xi]; });
  return out;
}
std::vector<double> apply_taps_transposed(const TapFn& taps, const std::vector<double>& g, size_t in_size) {
  std::vector<double> dx(in_size, 0.0);
  taps([&](int64_t xi, int64_t oi, double wgt) { dx[xi] += wgt * g[oi]; });
  return dx;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "expected an ember::Error";
  } catch (const Error& e) {
    for (const auto& p : pieces) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

double tol_for(DType d) { return d == DType::f64 ? 1e-12 : 2e-5; }

const std::vector<std::pair<Shape, Window>> kPoolCases = {
    {{2, 3, 8, 8}, {3, 3, 2, 2, 1, 1}},    // ResNet-stem style
    {{2, 2, 6, 7}, {2, 2, 2, 2, 0, 0}},    // halving, odd width drops the last column
    {{1, 3, 7, 9}, {2, 3, 1, 2, 1, 1}},    // non-square everything
    {{2, 2, 5, 5}, {5, 5, 1, 1, 2, 2}},    // big kernel, full padding
};

}  // namespace

// ---- max pool -----------------------------------------------------------------------

TEST(MaxPool2d, ForwardIndicesAndBackwardMatchReference) {
  for (const auto& [xs, k] : kPoolCases) {
    SCOPED_TRACE(shape_str(xs) + " k" + std::to_string(k.kh) + "x" + std::to_string(k.kw));
    PoolRef r = window_ref_shape(xs, k);
    for (DType dtype : {DType::f64, DType::f32}) {
      Tensor x = random_tensor(xs, dtype, -1, 1, 3);
      std::vector<double> out;
      std::vector<int64_t> arg;
      ref_max_pool(values(x), r, k, out, arg);
      for (const Tensor& xin : {x, non_contiguous(x)}) {
        MaxPoolResult res = max_pool2d_with_indices(xin, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw});
        EXPECT_EQ(res.out.shape(), (Shape{xs[0], xs[1], r.OH, r.OW}));
        EXPECT_EQ(res.indices.dtype(), DType::i64);
        EXPECT_TRUE(all_close(res.out, out, 0, 0));  // a max is exact
        EXPECT_EQ(res.indices.to_vector<int64_t>(), arg);
      }
      Tensor g = random_tensor({xs[0], xs[1], r.OH, r.OW}, dtype, -1, 1, 4);
      Tensor idx = max_pool2d_with_indices(x, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}).indices;
      EXPECT_TRUE(all_close(max_pool2d_backward(non_contiguous(g), idx, xs), ref_max_pool_grad(values(g), arg, r),
                            tol_for(dtype), tol_for(dtype)));
    }
  }
}

TEST(MaxPool2d, IntArgumentsStrideDefaultAndNaN) {
  Tensor x = random_tensor({1, 2, 6, 6}, DType::f32, -1, 1, 5);
  EXPECT_TRUE(all_close(max_pool2d(x, 3, 2, 1), max_pool2d(x, {3, 3}, {2, 2}, {1, 1}), 0, 0));
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{1, 2, 3, 3}));  // stride defaults to the kernel
  Tensor y = from_vector<double>({1, std::nan(""), 3, 4}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(max_pool2d(y, 2).item()));
}

TEST(MaxPool2d, Gradcheck) {
  Variable x(random_tensor({2, 2, 5, 6}, DType::f64, -1, 1, 6), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return max_pool2d(v[0], {3, 2}, {2, 2}, {1, 1}); }, {x}));
}

// ---- avg pool -----------------------------------------------------------------------

TEST(AvgPool2d, ForwardAndBackwardMatchReference) {
  for (const auto& [xs, k] : kPoolCases) {
    SCOPED_TRACE(shape_str(xs) + " k" + std::to_string(k.kh) + "x" + std::to_string(k.kw));
    PoolRef r = window_ref_shape(xs, k);
    TapFn taps = [&, &k = k](const std::function<void(int64_t, int64_t, double)>& f) { for_each_avg_tap(r, k, f); };
    for (DType dtype : {DType::f64, DType::f32}) {
      Tensor x = random_tensor(xs, dtype, -1, 1, 7);
      auto expected = apply_taps(taps, values(x), r.planes * r.OH * r.OW);
      EXPECT_TRUE(all_close(avg_pool2d(x, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}), expected, tol_for(dtype),
                            tol_for(dtype)));
      EXPECT_TRUE(all_close(avg_pool2d(non_contiguous(x), {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}), expected,
                            tol_for(dtype), tol_for(dtype)));
      Tensor g = random_tensor({xs[0], xs[1], r.OH, r.OW}, dtype, -1, 1, 8);
      EXPECT_TRUE(all_close(avg_pool2d_backward(g, xs, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}),
                            apply_taps_transposed(taps, values(g), r.planes * r.H * r.W), tol_for(dtype),
                            tol_for(dtype)));
    }
  }
}

TEST(AvgPool2d, PaddingCountsInTheDivisor) {
  // A 2x2 plane of ones, 3x3 window, padding 1, stride 1: each window holds 4 ones of 9 slots.
  Tensor x = ones({1, 1, 2, 2}, DType::f64);
  EXPECT_TRUE(all_close(avg_pool2d(x, 3, 1, 1), std::vector<double>(4, 4.0 / 9.0), 1e-15, 0));
}

TEST(AvgPool2d, Gradcheck) {
  Variable x(random_tensor({2, 2, 5, 6}, DType::f64, -1, 1, 9), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return avg_pool2d(v[0], {3, 2}, {2, 1}, {1, 1}); }, {x}));
}

// ---- adaptive avg pool --------------------------------------------------------------

TEST(AdaptiveAvgPool2d, ForwardAndBackwardMatchReference) {
  const std::vector<std::pair<Shape, std::pair<int64_t, int64_t>>> cases = {
      {{2, 3, 7, 7}, {3, 3}},    // 7 -> 3: overlapping windows of 3
      {{1, 2, 32, 32}, {7, 7}},  // 32 -> 7
      {{2, 2, 5, 6}, {2, 4}},    // non-square
      {{2, 4, 6, 5}, {1, 1}},    // global average
      {{1, 2, 3, 4}, {5, 6}},    // upsampling: windows of one or two
  };
  for (const auto& [xs, o] : cases) {
    SCOPED_TRACE(shape_str(xs) + " -> " + std::to_string(o.first) + "x" + std::to_string(o.second));
    PoolRef r{xs[0] * xs[1], xs[2], xs[3], o.first, o.second};
    TapFn taps = [&](const std::function<void(int64_t, int64_t, double)>& f) { for_each_adaptive_tap(r, f); };
    for (DType dtype : {DType::f64, DType::f32}) {
      Tensor x = random_tensor(xs, dtype, -1, 1, 10);
      auto expected = apply_taps(taps, values(x), r.planes * r.OH * r.OW);
      EXPECT_TRUE(all_close(adaptive_avg_pool2d(x, o.first, o.second), expected, tol_for(dtype), tol_for(dtype)));
      EXPECT_TRUE(all_close(adaptive_avg_pool2d(non_contiguous(x), o.first, o.second), expected, tol_for(dtype),
                            tol_for(dtype)));
      Tensor g = random_tensor({xs[0], xs[1], o.first, o.second}, dtype, -1, 1, 11);
      EXPECT_TRUE(all_close(adaptive_avg_pool2d_backward(g, xs),
                            apply_taps_transposed(taps, values(g), r.planes * r.H * r.W), tol_for(dtype),
                            tol_for(dtype)));
    }
  }
}

TEST(AdaptiveAvgPool2d, Gradcheck) {
  Variable x(random_tensor({2, 2, 7, 5}, DType::f64, -1, 1, 12), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& v) { return adaptive_avg_pool2d(v[0], 3, 2); }, {x}));
}

// ---- bilinear interpolation ---------------------------------------------------------

TEST(InterpolateBilinear, KnownValues) {
  // PyTorch: F.interpolate([[0, 1]], size=(1, 4), mode="bilinear")
  Tensor x = from_vector<double>({0, 1}, {1, 1, 1, 2});
  EXPECT_TRUE(all_close(interpolate_bilinear(x, 1, 4, false), {0.0, 0.25, 0.75, 1.0}, 1e-15, 1e-15));
  EXPECT_TRUE(all_close(interpolate_bilinear(x, 1, 4, true), {0.0, 1.0 / 3, 2.0 / 3, 1.0}, 1e-15, 1e-15));
}

TEST(InterpolateBilinear, ForwardAndBackwardMatchReference) {
  const std::vector<std::pair<Shape, std::pair<int64_t, int64_t>>> cases = {
      {{1, 2, 32, 32}, {224, 224}},  // upsampling, as when resizing features or images
      {{2, 3, 7, 7}, {3, 3}},        // downsampling
      {{2, 2, 5, 6}, {9, 4}},        // non-square, up in one axis and down in the other
      {{1, 2, 4, 5}, {4, 5}},        // same size: the identity
      {{1, 1, 1, 3}, {2, 1}},        // size-1 axes
  };
  for (const auto& [xs, o] : cases) {
    for (bool align : {false, true}) {
      SCOPED_TRACE(shape_str(xs) + " -> " + std::to_string(o.first) + "x" + std::to_string(o.second) +
                   (align ? " align_corners" : ""));
      PoolRef r{xs[0] * xs[1], xs[2], xs[3], o.first, o.second};
      TapFn taps = [&](const std::function<void(int64_t, int64_t, double)>& f) { for_each_bilinear_tap(r, align, f); };
      for (DType dtype : {DType::f64, DType::f32}) {
        Tensor x = random_tensor(xs, dtype, -1, 1, 13);
        auto expected = apply_taps(taps, values(x), r.planes * r.OH * r.OW);
        Tensor out = interpolate_bilinear(x, o.first, o.second, align);
        EXPECT_EQ(out.shape(), (Shape{xs[0], xs[1], o.first, o.second}));
        EXPECT_TRUE(all_close(out, expected, tol_for(dtype), tol_for(dtype)));
        EXPECT_TRUE(all_close(interpolate_bilinear(non_contiguous(x), o.first, o.second, align), expected,
                              tol_for(dtype), tol_for(dtype)));
        Tensor g = random_tensor({xs[0], xs[1], o.first, o.second}, dtype, -1, 1, 14);
        EXPECT_TRUE(all_close(interpolate_bilinear_backward(g, xs, align),
                              apply_taps_transposed(taps, values(g), r.planes * r.H * r.W), tol_for(dtype) * 10,
                              tol_for(dtype) * 10));
      }
    }
  }
}

TEST(InterpolateBilinear, Gradcheck) {
  for (bool align : {false, true}) {
    Variable x(random_tensor({1, 2, 4, 5}, DType::f64, -1, 1, 15), true);
    EXPECT_TRUE(gradcheck(
        [align](const std::vector<Variable>& v) { return interpolate_bilinear(v[0], 7, 3, align); }, {x}));
  }
}

// ---- errors -------------------------------------------------------------------------

TEST(PoolInterp, RejectBadArguments) {
  Tensor x = random_tensor({2, 3, 6, 6}, DType::f32);
  expect_error([&] { max_pool2d(x, 3, 1, 2); }, {"max_pool2d", "padding (2, 2)", "half the kernel (3, 3)"});
  expect_error([&] { max_pool2d(x, 8, 1, 0); }, {"max_pool2d", "kernel (8, 8)", "larger than the padded input 6x6"});
  expect_error([&] { avg_pool2d(x, 2, 0, 0); }, {"avg_pool2d", "stride must be positive"});
  expect_error([&] { avg_pool2d(x.flatten(2), 2); }, {"avg_pool2d", "(N, C, H, W)", "[2, 3, 36]"});
  expect_error([&] { max_pool2d(x.to(DType::i32), 2); }, {"max_pool2d", "i32"});
  MaxPoolResult r = max_pool2d_with_indices(x, 2, 2, 0);
  expect_error([&] { max_pool2d_backward(r.out, r.indices.slice(3, 0, 2), x.shape()); },
               {"max_pool2d_backward", "indices", "[2, 3, 3, 3]"});
  expect_error([&] { max_pool2d_backward(r.out, r.indices, {2, 4, 6, 6}); },
               {"max_pool2d_backward", "[2, 3, 3, 3]", "expected [2, 4, 3, 3]"});
  expect_error([&] { max_pool2d_backward(r.out, r.indices, {2, 3, 2, 2}); },
               {"max_pool2d_backward", "outside the 2x2 input plane"});
  expect_error([&] { avg_pool2d_backward(r.out, {2, 3, 8, 8}, 2, 2, 0); }, {"avg_pool2d_backward", "[2, 3, 3, 3]"});
  expect_error([&] { adaptive_avg_pool2d(x, 0, 3); }, {"adaptive_avg_pool2d", "positive", "(0, 3)"});
  expect_error([&] { interpolate_bilinear(x, 4, 0); }, {"interpolate_bilinear", "positive", "(4, 0)"});
  expect_error([&] { interpolate_bilinear_backward(random_tensor({2, 4, 3, 3}, DType::f32), x.shape(), false); },
               {"interpolate_bilinear_backward", "[2, 4, 3, 3]", "[2, 3, 6, 6]"});
  expect_error([&] { interpolate_bilinear(x.to(DType::bf16), 3, 3); }, {"interpolate_bilinear", "bf16"});
}

// ---- CUDA vs CPU --------------------------------------------------------------------

TEST(PoolInterp, CudaMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Device dev = Device::cuda(0);
  for (DType dtype : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
    for (const auto& [xs, k] : kPoolCases) {
      Tensor x = random_tensor(xs, dtype, -1, 1, 16);
      MaxPoolResult cpu_r = max_pool2d_with_indices(x, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw});
      MaxPoolResult gpu_r = max_pool2d_with_indices(non_contiguous(x.to(dev)), {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw});
      EXPECT_TRUE(all_close(gpu_r.out.cpu(), cpu_r.out, 0, 0));
      EXPECT_EQ(gpu_r.indices.cpu().to_vector<int64_t>(), cpu_r.indices.to_vector<int64_t>());
      Tensor g = random_tensor(cpu_r.out.shape(), dtype, -1, 1, 17);
      EXPECT_TRUE(all_close(max_pool2d_backward(g.to(dev), gpu_r.indices, xs).cpu(),
                            max_pool2d_backward(g, cpu_r.indices, xs), tol, tol));
      EXPECT_TRUE(all_close(avg_pool2d(x.to(dev), {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}).cpu(),
                            avg_pool2d(x, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}), tol, tol));
      EXPECT_TRUE(all_close(avg_pool2d_backward(g.to(dev), xs, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}).cpu(),
                            avg_pool2d_backward(g, xs, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}), tol, tol));
    }
    for (auto [xs, oh, ow] : std::vector<std::tuple<Shape, int64_t, int64_t>>{
             {{1, 2, 32, 32}, 224, 224}, {{2, 3, 7, 7}, 3, 3}, {{2, 2, 5, 6}, 9, 4}, {{2, 4, 6, 5}, 1, 1}}) {
      Tensor x = random_tensor(xs, dtype, -1, 1, 18);
      Tensor g = random_tensor({xs[0], xs[1], oh, ow}, dtype, -1, 1, 19);
      EXPECT_TRUE(all_close(adaptive_avg_pool2d(x.to(dev), oh, ow).cpu(), adaptive_avg_pool2d(x, oh, ow), tol, tol));
      EXPECT_TRUE(all_close(adaptive_avg_pool2d_backward(g.to(dev), xs).cpu(), adaptive_avg_pool2d_backward(g, xs),
                            tol, tol));
      for (bool align : {false, true}) {
        EXPECT_TRUE(all_close(interpolate_bilinear(x.to(dev), oh, ow, align).cpu(),
                              interpolate_bilinear(x, oh, ow, align), tol, tol));
        // atomicAdd changes the order of the sums.
        EXPECT_TRUE(all_close(interpolate_bilinear_backward(g.to(dev), xs, align).cpu(),
                              interpolate_bilinear_backward(g, xs, align), tol * 10, tol * 10));
      }
    }
  }
  // bf16 storage with f32 accumulation, against the f32 CPU result of the same rounded inputs.
  Tensor x = random_tensor({2, 3, 7, 7}, DType::f32, -1, 1, 20).to(DType::bf16);
  Tensor g = random_tensor({2, 3, 3, 3}, DType::f32, -1, 1, 21).to(DType::bf16);
  EXPECT_TRUE(all_close(interpolate_bilinear_backward(g.to(dev), x.shape(), false).cpu().to(DType::f32),
                        interpolate_bilinear_backward(g.to(DType::f32), x.shape(), false), 1e-2, 1e-2));
  EXPECT_TRUE(all_close(avg_pool2d(x.to(dev), 3, 2, 1).cpu().to(DType::f32), avg_pool2d(x.to(DType::f32), 3, 2, 1),
                        1e-2, 1e-2));
}
