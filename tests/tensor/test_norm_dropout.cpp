// batch_norm, layer_norm, dropout and drop_path: what the op harness (test_backend_ops, which
// has batch_norm's forward, saved statistics, running statistics and gradients in every mode,
// and dropout's masks and gradients) does not check: cancellation at a large mean, running stats
// of another dtype, the fused clamp against the unfused composition and with infinite
// gradients, layer_norm, dropout's statistics and global-sample masks, errors, and CUDA against
// the CPU at sizes that take several blocks per channel.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tests/support/test_util.h"

using ember::testing::error_of;

using namespace ember;
using ember::testing::all_close;
using ember::testing::gradcheck;
using ember::testing::non_contiguous;
using ember::testing::random_tensor;
using ember::testing::values;

namespace {


// ---- batch norm reference ---------------------------------------------------------------
struct BatchNormRef {
  std::vector<double> out, mean, invstd, var_biased;
};

// x: (N, C, L) row-major; w, b: (C) or empty (γ = 1, β = 0).
BatchNormRef batch_norm_ref(const std::vector<double>& x, int64_t N, int64_t C, int64_t L,
                            const std::vector<double>& w, const std::vector<double>& b, double eps) {
  BatchNormRef r;
  r.out.resize(x.size());
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) sum += x[(n * C + c) * L + l];
    double mean = sum / (N * L);
    double ss = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) ss += std::pow(x[(n * C + c) * L + l] - mean, 2);
    double var = ss / (N * L);
    double invstd = 1.0 / std::sqrt(var + eps);
    r.mean.push_back(mean);
    r.invstd.push_back(invstd);
    r.var_biased.push_back(var);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) {
        int64_t i = (n * C + c) * L + l;
        r.out[i] = (x[i] - mean) * invstd * (w.empty() ? 1.0 : w[c]) + (b.empty() ? 0.0 : b[c]);
      }
  }
  return r;
}

void split_ncl(const Shape& s, int64_t& N, int64_t& C, int64_t& L) {
  N = s[0];
  C = s[1];
  L = 1;
  for (size_t d = 2; d < s.size(); ++d) L *= s[d];
}

}  // namespace

// ---- batch norm -------------------------------------------------------------------------

TEST(BatchNorm, WithoutAffineAndWithLargeMean) {
  // A channel mean far from 0 must not lose the variance to cancellation.
  Tensor x = random_tensor({8, 3, 5}, DType::f64, 1000.0, 1001.0, 21);
  int64_t N = 8, C = 3, L = 5;
  BatchNormRef ref = batch_norm_ref(values(x), N, C, L, {}, {}, 1e-5);
  BatchNormResult r64 = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  EXPECT_TRUE(all_close(r64.out, ref.out, 1e-9, 1e-9));
  BatchNormResult r32 = batch_norm(x.to(DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), true);
  EXPECT_TRUE(all_close(r32.out, ref.out, 1e-3, 1e-3));  // x itself is rounded to f32 at 1000 ± 6e-5
}

TEST(BatchNorm, RunningStatsOfAnotherDtypeAreUpdatedThroughACopy) {
  Tensor x = random_tensor({5, 2}, DType::f32, -1.0, 1.0, 61);
  Tensor rm = zeros({2}, DType::f64), rv = ones({2}, DType::f64);
  BatchNormResult r = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.5);
  EXPECT_TRUE(all_close(rm, values(mul(r.save_mean.to(DType::f64), 0.5)), 1e-6, 1e-7));
  EXPECT_NE(values(rv)[0], 1.0);
}

// The fused clamp (ReLU, ReLU6 after the batch norm): forward against clamp of the float64
// reference; backward against the unfused composition batch_norm → clamp through autograd
// (an independent path: clamp's own backward kernel). Gradients by finite differences are the
// op harness's (test_backend_ops: batch_norm_*_relu*, batch_norm_*_clamp_narrow).
TEST(BatchNorm, FusedClampMatchesBatchNormThenClamp) {
  const BatchNormClamp relu{0.0, std::numeric_limits<double>::infinity()}, relu6{0.0, 6.0};
  // β wide enough that z lands on both sides of 0 and above 6 in most channels.
  for (Shape shape : {Shape{6, 4}, Shape{3, 5, 4, 3}, Shape{2, 3, 7}}) {
    for (const BatchNormClamp& cl : {relu, relu6, BatchNormClamp{-0.5, 0.25}}) {
      for (bool training : {true, false}) {
        for (DType dt : {DType::f64, DType::f32}) {
          SCOPED_TRACE(shape_str(shape) + " [" + std::to_string(cl.lo) + ", " + std::to_string(cl.hi) + "] training " +
                       std::to_string(training) + " " + dtype_name(dt));
          int64_t N, C, L;
          split_ncl(shape, N, C, L);
          Tensor x = random_tensor(shape, DType::f64, -2.0, 3.0, 21);
          Tensor w = random_tensor({C}, DType::f64, 1.0, 4.0, 22);
          Tensor b = random_tensor({C}, DType::f64, -2.0, 6.0, 23);
          Tensor rm = random_tensor({C}, DType::f64, -0.2, 0.2, 24), rv = random_tensor({C}, DType::f64, 0.5, 1.5, 25);
          // forward against the reference, clamped here
          std::vector<double> expected;
          if (training) {
            expected = batch_norm_ref(values(x), N, C, L, values(w), values(b), 1e-5).out;
          } else {
            std::vector<double> xv = values(x), m = values(rm), v = values(rv), wv = values(w), bv = values(b);
            for (size_t i = 0; i < xv.size(); ++i) {
              int64_t c = (static_cast<int64_t>(i) / L) % C;
              expected.push_back((xv[i] - m[c]) / std::sqrt(v[c] + 1e-5) * wv[c] + bv[c]);
            }
          }
          int below = 0, above = 0;
          for (double& e : expected) {
            below += e < cl.lo;
            above += e > cl.hi;
            e = std::min(std::max(e, cl.lo), cl.hi);
          }
          EXPECT_GT(below, 0);
          if (cl.hi < 10) {
            EXPECT_GT(above, 0);
          }
          BatchNormResult r = batch_norm(non_contiguous(x.to(dt)), w.to(dt), b.to(dt), rm.to(dt), rv.to(dt), training,
                                         0.1, 1e-5, cl);
          const double tol = dt == DType::f64 ? 1e-10 : 2e-5;
          EXPECT_TRUE(all_close(r.out, expected, tol, tol));
          // backward against batch_norm → clamp through autograd
          Tensor g = random_tensor(shape, dt, -1.0, 1.0, 26);
          Variable xv(x.to(dt), true), wv(w.to(dt), true), bv(b.to(dt), true);
          Variable fused = batch_norm(xv, wv, bv, rm.to(dt), rv.to(dt), training, 0.1, 1e-5, cl);
          Variable xu(x.to(dt), true), wu(w.to(dt), true), bu(b.to(dt), true);
          Variable unfused = clamp(batch_norm(xu, wu, bu, rm.to(dt), rv.to(dt), training, 0.1, 1e-5), cl.lo, cl.hi);
          EXPECT_TRUE(all_close(fused.data(), unfused.data(), tol, tol));
          fused.backward(g);
          unfused.backward(g);
          const double gtol = dt == DType::f64 ? 1e-10 : 1e-4;
          EXPECT_TRUE(all_close(xv.grad(), xu.grad(), gtol, gtol));
          EXPECT_TRUE(all_close(wv.grad(), wu.grad(), gtol, gtol));
          EXPECT_TRUE(all_close(bv.grad(), bu.grad(), gtol, gtol));
        }
      }
    }
  }
}

// The CPU kernel works in blocks of channels with per-slot sums moved to double every 32 samples
// (batch_norm_cpu.cpp): shapes with several channels per block, more samples than one flush,
// L = 1, and planes longer than a block, in f32 against the float64 formulas of batch_norm.h,
// forward (with ReLU6 and a mean far from 0) and backward (dx, dγ, dβ).
TEST(BatchNorm, ChannelBlocksMatchTheReferenceAtNetworkShapes) {
  for (Shape shape : {Shape{40, 64, 3, 3}, Shape{70, 5}, Shape{33, 3, 50}, Shape{3, 300, 2, 2}, Shape{2, 2, 3000}}) {
    SCOPED_TRACE(shape_str(shape));
    int64_t N, C, L;
    split_ncl(shape, N, C, L);
    Tensor x = random_tensor(shape, DType::f64, 40.0, 44.0, 31);
    Tensor w = random_tensor({C}, DType::f64, 1.0, 3.0, 32);
    Tensor b = random_tensor({C}, DType::f64, -1.0, 5.0, 33);
    Tensor g = random_tensor(shape, DType::f64, -1.0, 1.0, 34);
    const double eps = 1e-3;
    const std::vector<double> xv = values(x.to(DType::f32).to(DType::f64)), wv = values(w), bv = values(b),
                              gv = values(g.to(DType::f32).to(DType::f64));
    BatchNormRef ref = batch_norm_ref(xv, N, C, L, wv, bv, eps);
    std::vector<double> y = ref.out, dx(xv.size()), dw(C, 0.0), db(C, 0.0);
    std::vector<double> gp(xv.size());  // the gradient through ReLU6
    for (size_t i = 0; i < xv.size(); ++i) {
      gp[i] = (y[i] >= 0 && y[i] <= 6) ? gv[i] : 0.0;
      y[i] = std::min(std::max(y[i], 0.0), 6.0);
    }
    const int64_t M = N * L;
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t l = 0; l < L; ++l) {
          const int64_t i = (n * C + c) * L + l;
          db[c] += gp[i];
          dw[c] += gp[i] * (xv[i] - ref.mean[c]) * ref.invstd[c];
        }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t l = 0; l < L; ++l) {
          const int64_t i = (n * C + c) * L + l;
          const double xhat = (xv[i] - ref.mean[c]) * ref.invstd[c];
          dx[i] = wv[c] * ref.invstd[c] * (gp[i] - db[c] / M - xhat * dw[c] / M);
        }
    }
    const BatchNormClamp relu6{0.0, 6.0};
    Tensor w32 = w.to(DType::f32), b32 = b.to(DType::f32);
    BatchNormResult r = batch_norm(x.to(DType::f32), w32, b32, Tensor(), Tensor(), true, 0.1, eps, relu6);
    EXPECT_TRUE(all_close(r.save_mean, ref.mean, 1e-5, 1e-6));
    EXPECT_TRUE(all_close(r.save_invstd, ref.invstd, 1e-3, 1e-4));
    EXPECT_TRUE(all_close(r.out, y, 2e-3, 2e-3));
    BatchNormGrads d = batch_norm_backward(g.to(DType::f32), x.to(DType::f32), w32, r.save_mean, r.save_invstd, true, b32, relu6);
    EXPECT_TRUE(all_close(d.dbias, db, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(d.dweight, dw, 2e-3, 2e-3));
    EXPECT_TRUE(all_close(d.dx, dx, 2e-3, 2e-3));
  }
}

// Outside [lo, hi] the gradient is 0 whatever arrives there, an infinite one included, as in
// clamp's backward (a multiply by the mask would make inf·0 = NaN and spread it over the channel).
TEST(BatchNorm, FusedClampDropsEvenInfiniteGradientsOutsideTheBounds) {
  for (bool training : {true, false}) {
    Tensor x = from_vector(std::vector<float>{-3, -1, 0.5, 2, 9, 1}, {6, 1});
    Tensor rm = zeros({1}), rv = ones({1});
    BatchNormResult r = batch_norm(x, Tensor(), Tensor(), rm.clone(), rv.clone(), training, 0.1, 1e-5, {0.0, 6.0});
    std::vector<double> y = values(r.out);
    std::vector<float> g = {1, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < y.size(); ++i)
      if (y[i] <= 0 || y[i] >= 6) g[i] = std::numeric_limits<float>::infinity();  // clamped: masked
    BatchNormGrads d = batch_norm_backward(from_vector(g, {6, 1}), x, Tensor(), r.save_mean, r.save_invstd,
                                           training, Tensor(), {0.0, 6.0});
    for (double v : values(d.dx)) EXPECT_TRUE(std::isfinite(v)) << "training " << training;
    EXPECT_TRUE(std::isfinite(d.dbias.item())) << "training " << training;
  }
}

TEST(BatchNorm, ErrorsNameTheProblem) {
  Tensor x = random_tensor({4, 3, 2}, DType::f32);
  EXPECT_NE(error_of([&] { batch_norm(x, ones({4}), Tensor(), Tensor(), Tensor(), true); })
                .find("batch_norm: weight has shape [4], expected [3]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm(random_tensor({3}, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), true); })
                .find("expected (N, C) or (N, C, *)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm(x.to(DType::i32), Tensor(), Tensor(), Tensor(), Tensor(), true); })
                .find("dtype i32, expected f32, f64, bf16 or f16"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm(random_tensor({1, 3}, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), true); })
                .find("more than one value per channel"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); })
                .find("running_mean is required"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm_backward(ones({4, 3}), x, Tensor(), zeros({3}), ones({3}), true); })
                .find("grad has shape [4, 3] but x has [4, 3, 2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, {6.0, 0.0}); })
                .find("batch_norm: clamp bounds must satisfy lo <= hi, got [6, 0]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, {std::nan(""), 1.0}); })
                .find("clamp bounds"),
            std::string::npos);
}

// ---- layer norm -------------------------------------------------------------------------

namespace {
// x: (R, D) row-major; returns y, and fills mean, rstd (R).
std::vector<double> layer_norm_ref(const std::vector<double>& x, int64_t D, const std::vector<double>& w,
                                   const std::vector<double>& b, double eps, std::vector<double>& mean,
                                   std::vector<double>& rstd) {
  int64_t R = static_cast<int64_t>(x.size()) / D;
  std::vector<double> y(x.size());
  mean.assign(R, 0);
  rstd.assign(R, 0);
  for (int64_t r = 0; r < R; ++r) {
    double s = 0;
    for (int64_t j = 0; j < D; ++j) s += x[r * D + j];
    double m = s / D, v = 0;
    for (int64_t j = 0; j < D; ++j) v += (x[r * D + j] - m) * (x[r * D + j] - m);
    double rs = 1.0 / std::sqrt(v / D + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (int64_t j = 0; j < D; ++j)
      y[r * D + j] = (x[r * D + j] - m) * rs * (w.empty() ? 1.0 : w[j]) + (b.empty() ? 0.0 : b[j]);
  }
  return y;
}
}  // namespace

TEST(LayerNorm, ForwardMatchesReferenceForSeveralD) {
  for (int64_t D : {1, 7, 64, 192, 333}) {
    for (Shape lead : {Shape{5}, Shape{2, 3}}) {
      Shape shape = lead;
      shape.push_back(D);
      Tensor x = random_tensor(shape, DType::f64, -2.0, 3.0, 81);
      Tensor w = random_tensor({D}, DType::f64, 0.5, 1.5, 82), b = random_tensor({D}, DType::f64, -1.0, 1.0, 83);
      std::vector<double> mean, rstd;
      auto y = layer_norm_ref(values(x), D, values(w), values(b), 1e-5, mean, rstd);
      for (DType dt : {DType::f64, DType::f32}) {
        for (bool contiguous : {true, false}) {
          Tensor xin = contiguous ? x.to(dt) : non_contiguous(x.to(dt));
          LayerNormResult r = layer_norm(xin, w.to(dt), b.to(dt));
          double tol = dt == DType::f64 ? 1e-10 : 3e-5;
          EXPECT_TRUE(all_close(r.out, y, tol, tol)) << "D " << D << " " << dtype_name(dt);
          EXPECT_TRUE(all_close(r.mean, mean, tol, tol));
          EXPECT_TRUE(all_close(r.rstd, rstd, tol, tol));
          EXPECT_EQ(r.mean.shape(), lead);
        }
      }
    }
  }
}

TEST(LayerNorm, NoAffineAndLargeMean) {
  Tensor x = random_tensor({4, 96}, DType::f64, 500.0, 501.0, 91);
  std::vector<double> mean, rstd;
  auto y = layer_norm_ref(values(x), 96, {}, {}, 1e-5, mean, rstd);
  EXPECT_TRUE(all_close(layer_norm(x, Tensor(), Tensor()).out, y, 1e-9, 1e-9));
  Tensor x32 = x.to(DType::f32);
  y = layer_norm_ref(values(x32), 96, {}, {}, 1e-5, mean, rstd);  // reference on the rounded input
  EXPECT_TRUE(all_close(layer_norm(x32, Tensor(), Tensor()).out, y, 1e-3, 1e-3));
}

TEST(LayerNorm, Gradients) {
  for (int64_t D : {1, 5, 17}) {
    Variable x(random_tensor({3, 2, D}, DType::f64, -1.0, 1.0, 101), true);
    Variable w(random_tensor({D}, DType::f64, 0.5, 1.5, 102), true);
    Variable b(random_tensor({D}, DType::f64, -1.0, 1.0, 103), true);
    EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return layer_norm(in[0], in[1], in[2]); }, {x, w, b}))
        << "D " << D;
  }
  Variable x(non_contiguous(random_tensor({4, 6}, DType::f64, -1.0, 1.0, 104)), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return layer_norm(in[0], Variable(), Variable()); }, {x}));
}

TEST(LayerNorm, BackwardParameterSumsSpanManyRows) {
  // Enough rows that the CPU backward splits them into per-thread partial sums.
  const int64_t R = 300, D = 8;
  Tensor x = random_tensor({R, D}, DType::f64, -1.0, 1.0, 111), g = random_tensor({R, D}, DType::f64, -1.0, 1.0, 112);
  LayerNormResult r = layer_norm(x, ones({D}, DType::f64), zeros({D}, DType::f64));
  LayerNormGrads d = layer_norm_backward(g, x, ones({D}, DType::f64), r.mean, r.rstd);
  std::vector<double> mean, rstd;
  auto xhat = layer_norm_ref(values(x), D, {}, {}, 1e-5, mean, rstd);
  auto gv = values(g);
  std::vector<double> dw(D, 0), db(D, 0);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < D; ++j) {
      dw[j] += gv[i * D + j] * xhat[i * D + j];
      db[j] += gv[i * D + j];
    }
  EXPECT_TRUE(all_close(d.dweight, dw, 1e-10, 1e-10));
  EXPECT_TRUE(all_close(d.dbias, db, 1e-10, 1e-10));
}

TEST(LayerNorm, ErrorsNameTheProblem) {
  Tensor x = random_tensor({2, 8}, DType::f32);
  EXPECT_NE(error_of([&] { layer_norm(x, ones({7}), Tensor()); }).find("layer_norm: weight has shape [7], expected [8]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { layer_norm(x.to(DType::i64), Tensor(), Tensor()); }).find("dtype i64, expected f32, f64, bf16 or f16"),
            std::string::npos);
  EXPECT_NE(error_of([&] { layer_norm(zeros({3, 0}), Tensor(), Tensor()); }).find("normalized dim is empty"),
            std::string::npos);
}

// ---- dropout and drop path ------------------------------------------------------------

TEST(Dropout, MaskFractionScalingAndDeterminism) {
  const double p = 0.3;
  Tensor x = random_tensor({200, 500}, DType::f32, 0.5, 1.5, 121);  // never 0
  Generator g1(2024), g2(2024);
  DropoutResult a = dropout(x, p, true, &g1);
  DropoutResult b = dropout(x, p, true, &g2);
  EXPECT_EQ(values(a.out), values(b.out));  // same seed, same mask
  DropoutResult c = dropout(x, p, true, &g1);
  EXPECT_NE(values(a.mask), values(c.mask));  // the next draw differs
  auto xv = values(x), yv = values(a.out), mv = values(a.mask);
  int64_t dropped = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.0) {
      ++dropped;
      EXPECT_EQ(mv[i], 0.0);
    } else {
      EXPECT_NEAR(yv[i], xv[i] / (1 - p), 1e-6);
      EXPECT_NEAR(mv[i], 1 / (1 - p), 1e-6);
    }
  }
  double frac = double(dropped) / xv.size();
  EXPECT_NEAR(frac, p, 0.01);  // 100k draws: the standard error is 0.0015
  // Not training, or p = 0: x itself. p = 1: everything dropped.
  EXPECT_EQ(dropout(x, p, false).out.storage(), x.storage());
  EXPECT_FALSE(dropout(x, 0.0, true).mask.defined());
  EXPECT_TRUE(all_close(dropout(x, 1.0, true).out, zeros_like(x), 0, 0));
  // Eval passes the Variable itself through.
  Variable xvar(x, true);
  EXPECT_TRUE(dropout(xvar, p, false).same(xvar));
}

TEST(Dropout, DropPathDecidesPerSample) {
  const double p = 0.25;
  const int64_t N = 4000;
  Tensor x = random_tensor({N, 3, 2}, DType::f64, 0.5, 1.5, 131);
  Generator gen(5);
  DropoutResult r = drop_path(x, p, true, &gen);
  EXPECT_EQ(r.mask.shape(), (Shape{N, 1, 1}));
  auto xv = values(x), yv = values(r.out), mv = values(r.mask);
  int64_t dropped = 0;
  for (int64_t n = 0; n < N; ++n) {
    bool keep = mv[n] != 0.0;
    if (!keep) ++dropped;
    else EXPECT_NEAR(mv[n], 1 / (1 - p), 1e-12);
    for (int64_t i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(yv[n * 6 + i], keep ? xv[n * 6 + i] / (1 - p) : 0.0);
  }
  EXPECT_NEAR(double(dropped) / N, p, 0.03);
  EXPECT_EQ(drop_path(x, p, false).out.storage(), x.storage());
}

// A rank's rows under GlobalSampleScope(first, count) are exactly those rows of the mask one
// process draws for the whole batch, for dropout and drop-path alike, from the same draw.
TEST(Dropout, MasksUnderAGlobalSampleScopeAreRowsOfTheWholeBatchsMask) {
  const int64_t total = 10, T = 3, D = 4;
  Tensor whole = random_tensor({total, T, D}, DType::f64, 0.5, 1.5, 151);  // never 0
  Generator g(99);
  const Tensor drop_all = dropout(whole, 0.5, true, &g).mask, path_all = drop_path(whole, 0.5, true, &g).mask;
  for (auto [first, count] : {std::pair<int64_t, int64_t>{0, 4}, {4, 3}, {7, 3}}) {
    SCOPED_TRACE(first);
    Tensor share = whole.narrow(0, first, count).contiguous();
    g.set_offset(0);  // the same two draws as above
    GlobalSampleScope scope(first, count);
    EXPECT_EQ(values(dropout(share, 0.5, true, &g).mask), values(drop_all.narrow(0, first, count).contiguous()));
    EXPECT_EQ(values(drop_path(share, 0.5, true, &g).mask), values(path_all.narrow(0, first, count).contiguous()));
    // Samples flattened with their tokens, (count·T, D), are keyed alike.
    g.set_offset(0);
    EXPECT_EQ(values(dropout(share.reshape({count * T, D}), 0.5, true, &g).mask),
              values(drop_all.narrow(0, first, count).contiguous()));
  }
  {  // outside any scope again: the mask starts at element 0 of its draw
    g.set_offset(0);
    GlobalSampleScope outer(5, 2);
    { GlobalSampleScope inner(0, total); }
    EXPECT_EQ(values(dropout(whole.narrow(0, 5, 2).contiguous(), 0.5, true, &g).mask),
              values(drop_all.narrow(0, 5, 2).contiguous()));  // the outer scope is back
  }
  g.set_offset(0);
  EXPECT_EQ(values(dropout(whole, 0.5, true, &g).mask), values(drop_all));
  GlobalSampleScope three(0, 3);
  EXPECT_NE(error_of([&] { dropout(random_tensor({4, 5}, DType::f32), 0.5, true, &g); })
                .find("dropout: a mask of shape [4, 5] does not split into the 3 samples"),
            std::string::npos);
  EXPECT_NE(error_of([] { GlobalSampleScope bad(0, 0); }).find("GlobalSampleScope: expected first >= 0 and count > 0"),
            std::string::npos);
}

TEST(Dropout, Errors) {
  Tensor x = random_tensor({3}, DType::f32);
  EXPECT_NE(error_of([&] { dropout(x, 1.5, true); }).find("dropout: p must be in [0, 1], got 1.5"), std::string::npos);
  EXPECT_NE(error_of([&] { dropout(x.to(DType::i32), 0.5, true); }).find("dtype i32, expected a floating dtype"),
            std::string::npos);
  EXPECT_NE(error_of([&] { drop_path(scalar_tensor(1.0), 0.5, true); }).find("drop_path: x is a scalar"),
            std::string::npos);
}

// ---- CUDA against the CPU ----------------------------------------------------------------

TEST(Cuda, BatchNormMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Device dev = Device::cuda(0);
  for (Shape shape : {Shape{64, 16}, Shape{8, 12, 9, 7}}) {
    int64_t C = shape[1];
    Tensor x = random_tensor(shape, DType::f32, -1.0, 2.0, 151);
    Tensor w = random_tensor({C}, DType::f32, 0.5, 1.5, 152), b = random_tensor({C}, DType::f32, -1.0, 1.0, 153);
    Tensor g = random_tensor(shape, DType::f32, -1.0, 1.0, 154);
    for (bool training : {true, false}) {
      Tensor rm = random_tensor({C}, DType::f32, -0.2, 0.2, 155), rv = random_tensor({C}, DType::f32, 0.5, 1.5, 156);
      Tensor rm_d = rm.to(dev), rv_d = rv.to(dev);
      BatchNormResult c = batch_norm(x, w, b, rm, rv, training, 0.1);
      BatchNormResult d = batch_norm(non_contiguous(x.to(dev)), w.to(dev), b.to(dev), rm_d, rv_d, training, 0.1);
      EXPECT_TRUE(all_close(d.out.cpu(), c.out, 1e-4, 1e-4));
      EXPECT_TRUE(all_close(rm_d.cpu(), rm, 1e-5, 1e-6));
      EXPECT_TRUE(all_close(rv_d.cpu(), rv, 1e-5, 1e-6));
      BatchNormGrads gc = batch_norm_backward(g, x, w, c.save_mean, c.save_invstd, training);
      BatchNormGrads gd = batch_norm_backward(g.to(dev), x.to(dev), w.to(dev), d.save_mean, d.save_invstd, training);
      EXPECT_TRUE(all_close(gd.dx.cpu(), gc.dx, 1e-3, 1e-4));
      EXPECT_TRUE(all_close(gd.dweight.cpu(), gc.dweight, 1e-3, 1e-3));
      EXPECT_TRUE(all_close(gd.dbias.cpu(), gc.dbias, 1e-3, 1e-3));
      // with a fused ReLU6
      const BatchNormClamp relu6{0.0, 6.0};
      BatchNormResult cc = batch_norm(x, w, b, rm.clone(), rv.clone(), training, 0.1, 1e-5, relu6);
      BatchNormResult dc = batch_norm(x.to(dev), w.to(dev), b.to(dev), rm_d.clone(), rv_d.clone(), training, 0.1, 1e-5, relu6);
      EXPECT_TRUE(all_close(dc.out.cpu(), cc.out, 1e-4, 1e-4));
      BatchNormGrads gcc = batch_norm_backward(g, x, w, cc.save_mean, cc.save_invstd, training, b, relu6);
      BatchNormGrads gdc = batch_norm_backward(g.to(dev), x.to(dev), w.to(dev), dc.save_mean, dc.save_invstd, training,
                                               b.to(dev), relu6);
      EXPECT_TRUE(all_close(gdc.dx.cpu(), gcc.dx, 1e-3, 1e-4));
      EXPECT_TRUE(all_close(gdc.dweight.cpu(), gcc.dweight, 1e-3, 1e-3));
      EXPECT_TRUE(all_close(gdc.dbias.cpu(), gcc.dbias, 1e-3, 1e-3));
    }
  }
}

TEST(Cuda, LayerNormMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Device dev = Device::cuda(0);
  for (int64_t D : {7, 192, 768}) {
    Tensor x = random_tensor({37, D}, DType::f32, -1.0, 2.0, 161);
    Tensor w = random_tensor({D}, DType::f32, 0.5, 1.5, 162), b = random_tensor({D}, DType::f32, -1.0, 1.0, 163);
    Tensor g = random_tensor({37, D}, DType::f32, -1.0, 1.0, 164);
    LayerNormResult c = layer_norm(x, w, b);
    LayerNormResult d = layer_norm(x.to(dev), w.to(dev), b.to(dev));
    EXPECT_TRUE(all_close(d.out.cpu(), c.out, 1e-4, 1e-4)) << "D " << D;
    EXPECT_TRUE(all_close(d.rstd.cpu(), c.rstd, 1e-4, 1e-5));
    LayerNormGrads gc = layer_norm_backward(g, x, w, c.mean, c.rstd);
    LayerNormGrads gd = layer_norm_backward(g.to(dev), x.to(dev), w.to(dev), d.mean, d.rstd);
    EXPECT_TRUE(all_close(gd.dx.cpu(), gc.dx, 1e-3, 1e-4));
    EXPECT_TRUE(all_close(gd.dweight.cpu(), gc.dweight, 1e-3, 1e-3));
    EXPECT_TRUE(all_close(gd.dbias.cpu(), gc.dbias, 1e-3, 1e-3));
  }
  // f64 and the autograd path.
  Variable x(random_tensor({3, 5}, DType::f64, -1.0, 1.0, 165, dev), true);
  Variable w(random_tensor({5}, DType::f64, 0.5, 1.5, 166, dev), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return layer_norm(in[0], in[1], Variable()); }, {x, w}));
}
