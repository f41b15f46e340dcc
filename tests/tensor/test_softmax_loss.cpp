// Softmax, log-softmax, logsumexp and cross-entropy: forward against float64 references written
// out here (every dim, non-contiguous, large magnitudes, masked and degenerate rows), the backward
// kernels against their formulas, gradchecks in f64, error messages, and CUDA against the CPU.
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

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// x's row-major values seen as (outer, C, inner) around `dim`.
struct Layout {
  int64_t outer = 1, C = 1, inner = 1;
  Layout(const Shape& shape, int64_t dim) {
    const int64_t nd = static_cast<int64_t>(shape.size());
    dim = dim < 0 ? dim + nd : dim;
    for (int64_t d = 0; d < nd; ++d) (d < dim ? outer : d == dim ? C : inner) *= shape[d];
  }
  int64_t at(int64_t o, int64_t c, int64_t i) const { return (o * C + c) * inner + i; }
};

enum class Mode { softmax, log_softmax, logsumexp };

// Max-subtracted, in double. logsumexp's result is (outer, inner), row-major.
std::vector<double> reference(const std::vector<double>& x, const Shape& shape, int64_t dim, Mode mode) {
  Layout L(shape, dim);
  std::vector<double> out(mode == Mode::logsumexp ? L.outer * L.inner : x.size());
  for (int64_t o = 0; o < L.outer; ++o) {
    for (int64_t i = 0; i < L.inner; ++i) {
      double m = -kInf;
      for (int64_t c = 0; c < L.C; ++c) m = std::max(m, x[L.at(o, c, i)]);
      double s = 0;
      for (int64_t c = 0; c < L.C; ++c) s += std::exp(x[L.at(o, c, i)] - m);
      const double lse = m + std::log(s);
      if (mode == Mode::logsumexp) {
        out[o * L.inner + i] = lse;
        continue;
      }
      for (int64_t c = 0; c < L.C; ++c) {
        const double v = x[L.at(o, c, i)] - lse;
        out[L.at(o, c, i)] = mode == Mode::softmax ? std::exp(v) : v;
      }
    }
  }
  return out;
}

Tensor run(Mode mode, const Tensor& x, int64_t dim, bool keepdim = false) {
  switch (mode) {
    case Mode::softmax: return softmax(x, dim);
    case Mode::log_softmax: return log_softmax(x, dim);
    case Mode::logsumexp: return logsumexp(x, dim, keepdim);
  }
  return Tensor();
}

template <class Fn>
void expect_error(Fn&& fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error containing \"" << fragment << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// Deterministic class ids in [0, C).
Tensor class_ids(int64_t N, int64_t C, uint64_t seed, Device device = Device::cpu()) {
  std::vector<int64_t> ids(N);
  for (int64_t n = 0; n < N; ++n) ids[n] = static_cast<int64_t>((seed * 2654435761u + n * 40503u) % C);
  return from_vector<int64_t>(ids, {N}, DType::i64, device);
}

// Random rows that sum to 1 (or to `total`), built on the host.
Tensor probabilities(int64_t N, int64_t C, uint64_t seed, double total = 1.0, DType dt = DType::f64) {
  std::vector<double> r = values(random_tensor({N, C}, DType::f64, 0.1, 1.0, seed));
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += r[n * C + c];
    for (int64_t c = 0; c < C; ++c) r[n * C + c] *= total / s;
  }
  return from_vector<double>(r, {N, C}, dt);
}

// -Σ_c q_nc log_softmax(x)_nc per row, with q from ids or probabilities and smoothing eps.
std::vector<double> ce_reference(const Tensor& logits, const Tensor& target, double eps) {
  const int64_t N = logits.size(0), C = logits.size(1);
  std::vector<double> x = values(logits), t = values(target), logp = reference(x, {N, C}, 1, Mode::log_softmax);
  std::vector<double> loss(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      double q = target.dim() == 1 ? (static_cast<int64_t>(t[n]) == c ? 1.0 : 0.0) : t[n * C + c];
      q = (1 - eps) * q + eps / C;
      loss[n] -= q * logp[n * C + c];
    }
  }
  return loss;
}

std::vector<double> reduce_reference(const std::vector<double>& rows, Reduction r) {
  if (r == Reduction::none) return rows;
  double s = 0;
  for (double v : rows) s += v;
  return {r == Reduction::sum ? s : s / static_cast<double>(rows.size())};
}

}  // namespace

// ---- softmax family: forward ---------------------------------------------------------

TEST(Softmax, ForwardMatchesReferenceOverEveryDim) {
  // (2, 3, 4, 70) along dim 0 has 840 rows 840 apart: bands of 64 plus a partial one.
  for (const Shape& shape : {Shape{6, 9}, Shape{3, 4, 5}, Shape{2, 3, 4, 70}}) {
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor base = random_tensor(shape, dt, -4.0, 4.0, 3);
      for (bool strided : {false, true}) {
        Tensor x = strided ? non_contiguous(base) : base;
        const std::vector<double> xv = values(x);
        const double rtol = dt == DType::f32 ? 2e-5 : 1e-11;
        for (int64_t dim = -1; dim < static_cast<int64_t>(shape.size()); ++dim) {
          for (Mode mode : {Mode::softmax, Mode::log_softmax, Mode::logsumexp}) {
            SCOPED_TRACE(::testing::Message() << shape_str(shape) << " " << dtype_name(dt) << " dim " << dim
                                              << " mode " << static_cast<int>(mode) << (strided ? " strided" : ""));
            Tensor out = run(mode, x, dim);
            EXPECT_EQ(out.dtype(), dt);
            EXPECT_TRUE(out.is_contiguous());
            EXPECT_TRUE(all_close(out, reference(xv, shape, dim, mode), rtol, 1e-6));
          }
        }
      }
    }
  }
}

TEST(Softmax, LongRowsAndColumns) {
  for (const Shape& shape : {Shape{3, 3000}, Shape{3000, 3}}) {
    Tensor x = random_tensor(shape, DType::f32, -10, 10, 5);
    for (int64_t dim : {0, 1}) {
      for (Mode mode : {Mode::softmax, Mode::log_softmax, Mode::logsumexp}) {
        EXPECT_TRUE(all_close(run(mode, x, dim), reference(values(x), shape, dim, mode), 2e-5, 1e-7))
            << shape_str(shape) << " dim " << dim << " mode " << static_cast<int>(mode);
      }
    }
  }
}

TEST(Softmax, LargeMagnitudesAreStable) {
  Tensor x = random_tensor({8, 33}, DType::f32, -1000, 1000, 9);
  for (int64_t dim : {0, 1}) {
    for (Mode mode : {Mode::softmax, Mode::log_softmax, Mode::logsumexp}) {
      Tensor out = run(mode, x, dim);
      for (double v : values(out)) EXPECT_TRUE(std::isfinite(v));
      EXPECT_TRUE(all_close(out, reference(values(x), x.shape(), dim, mode), 1e-5, 1e-6));
    }
  }
  Tensor h = from_vector<double>({1000, 999, -1000}, {3}, DType::f32);
  const double e = std::exp(-1.0);
  EXPECT_TRUE(all_close(softmax(h, 0), std::vector<double>{1 / (1 + e), e / (1 + e), 0}, 1e-6, 0));
  EXPECT_NEAR(logsumexp(h, 0).item(), 1000 + std::log1p(e), 1e-3);
}

TEST(Softmax, LogsumexpShapesWithAndWithoutKeepdim) {
  Tensor x = random_tensor({2, 3, 4}, DType::f64);
  EXPECT_EQ(logsumexp(x, 1).shape(), (Shape{2, 4}));
  EXPECT_EQ(logsumexp(x, 1, true).shape(), (Shape{2, 1, 4}));
  EXPECT_EQ(logsumexp(x, -1, true).shape(), (Shape{2, 3, 1}));
  EXPECT_TRUE(all_close(logsumexp(x, 1, true), reference(values(x), x.shape(), 1, Mode::logsumexp), 1e-12, 0));
  Tensor s = scalar_tensor(2.5, DType::f64);  // a 0-d tensor is one row of one element
  EXPECT_EQ(softmax(s, 0).item(), 1.0);
  EXPECT_EQ(log_softmax(s, -1).item(), 0.0);
  EXPECT_EQ(logsumexp(s, 0).shape(), Shape{});
  EXPECT_EQ(logsumexp(s, 0).item(), 2.5);
  EXPECT_EQ(softmax(zeros({0, 4}), 1).shape(), (Shape{0, 4}));
  EXPECT_EQ(values(logsumexp(zeros({2, 0}), 1)), (std::vector<double>{-kInf, -kInf}));
}

TEST(Softmax, MaskedAndDegenerateRows) {
  // Rows: masked entries, all masked, a NaN. Checked along the last dim and, transposed, along dim 0.
  Tensor rows = from_vector<double>({-kInf, 0, 1, -kInf, -kInf, -kInf, -kInf, -kInf, 1, kNaN, 2, 3}, {3, 4});
  const double e = std::exp(1.0);
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool transposed : {false, true}) {
      Tensor x = transposed ? rows.to(dt).t().contiguous() : rows.to(dt);
      const int64_t dim = transposed ? 0 : 1;
      auto row = [&](const Tensor& out, int64_t r) {
        return values(transposed ? out.select(1, r) : out.select(0, r));
      };
      Tensor p = softmax(x, dim), lp = log_softmax(x, dim), lse = logsumexp(x, dim);
      auto p0 = row(p, 0), lp0 = row(lp, 0);
      EXPECT_EQ(p0[0], 0.0);
      EXPECT_EQ(p0[3], 0.0);
      EXPECT_NEAR(p0[1], 1 / (1 + e), 1e-6);
      EXPECT_NEAR(p0[2], e / (1 + e), 1e-6);
      EXPECT_EQ(lp0[0], -kInf);
      EXPECT_NEAR(lp0[2], -std::log1p(1 / e), 1e-6);
      for (double v : row(p, 1)) EXPECT_TRUE(std::isnan(v));   // 0/0
      for (double v : row(lp, 1)) EXPECT_TRUE(std::isnan(v));
      for (double v : row(p, 2)) EXPECT_TRUE(std::isnan(v));   // NaN poisons its row only
      auto l = values(lse);
      EXPECT_NEAR(l[0], std::log1p(e), 1e-6);
      EXPECT_EQ(l[1], -kInf);  // log Σ 0
      EXPECT_TRUE(std::isnan(l[2]));
    }
  }
}

// ---- softmax family: backward ----------------------------------------------------------

TEST(Softmax, BackwardKernelsMatchTheirFormulas) {
  for (const Shape& shape : {Shape{5, 7}, Shape{2, 70, 3}}) {
    for (int64_t dim = 0; dim < static_cast<int64_t>(shape.size()); ++dim) {
      Tensor x = random_tensor(shape, DType::f64, -3, 3, 13);
      Tensor g = non_contiguous(random_tensor(shape, DType::f64, -1, 1, 14));
      Layout L(shape, dim);
      for (bool log_form : {false, true}) {
        Tensor y = log_form ? log_softmax(x, dim) : softmax(x, dim);
        std::vector<double> yv = values(y), gv = values(g), expect(yv.size());
        for (int64_t o = 0; o < L.outer; ++o) {
          for (int64_t i = 0; i < L.inner; ++i) {
            double acc = 0;
            for (int64_t c = 0; c < L.C; ++c) acc += log_form ? gv[L.at(o, c, i)] : gv[L.at(o, c, i)] * yv[L.at(o, c, i)];
            for (int64_t c = 0; c < L.C; ++c) {
              const int64_t k = L.at(o, c, i);
              expect[k] = log_form ? gv[k] - std::exp(yv[k]) * acc : yv[k] * (gv[k] - acc);
            }
          }
        }
        Tensor dx = log_form ? log_softmax_backward(g, y, dim) : softmax_backward(g, y, dim);
        EXPECT_TRUE(all_close(dx, expect, 1e-10, 1e-12)) << shape_str(shape) << " dim " << dim << " log " << log_form;
        Tensor dx32 = log_form ? log_softmax_backward(g.to(DType::f32), y.to(DType::f32), dim)
                               : softmax_backward(g.to(DType::f32), y.to(DType::f32), dim);
        EXPECT_TRUE(all_close(dx32, expect, 1e-4, 1e-5));
      }
    }
  }
}

TEST(SoftmaxGrad, GradcheckOverDims) {
  for (int64_t dim : {0, 1, -1}) {
    auto fresh = [](uint64_t seed) { return Variable(random_tensor({3, 4, 5}, DType::f64, -2, 2, seed), true); };
    EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return softmax(in[0], dim); }, {fresh(1)}))
        << "softmax dim " << dim;
    EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return log_softmax(in[0], dim); }, {fresh(2)}))
        << "log_softmax dim " << dim;
    for (bool keepdim : {false, true}) {
      EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return logsumexp(in[0], dim, keepdim); },
                            {fresh(3)}))
          << "logsumexp dim " << dim << " keepdim " << keepdim;
    }
  }
  Variable strided(non_contiguous(random_tensor({4, 6}, DType::f64, -2, 2, 4)), true);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return softmax(in[0], 0); }, {strided}));
}

TEST(Softmax, ErrorsNameTheOpAndTheProblem) {
  expect_error([] { softmax(full({2, 3}, 1.0, DType::i64), 1); }, "softmax: dtype i64 not supported");
  expect_error([] { log_softmax(zeros({2, 3}), 2); }, "log_softmax: dim 2 out of range for a tensor of 2 dim(s)");
  expect_error([] { logsumexp(zeros({2, 3}, DType::bf16), 0); }, "logsumexp: dtype bf16 not supported (expected f32 or f64)");
  expect_error([] { softmax_backward(zeros({2, 3}), zeros({3, 2}), 1); },
               "softmax_backward: grad shape [2, 3] does not match the output's shape [3, 2]");
  expect_error([] { log_softmax_backward(zeros({2}, DType::f64), zeros({2}), 0); },
               "log_softmax_backward: grad has dtype f64 but the output has f32");
}

// ---- cross-entropy ----------------------------------------------------------------------

TEST(CrossEntropy, ForwardMatchesReference) {
  const int64_t N = 7, C = 5;
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor logits = random_tensor({N, C}, dt, -3, 3, 17);
    for (bool soft : {false, true}) {
      Tensor target = soft ? probabilities(N, C, 18, 1.0, dt) : class_ids(N, C, 19);
      for (double eps : {0.0, 0.1}) {
        std::vector<double> rows = ce_reference(logits, target, eps);
        for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
          for (bool strided : {false, true}) {
            SCOPED_TRACE(::testing::Message() << dtype_name(dt) << (soft ? " soft" : " ids") << " eps " << eps
                                              << " reduction " << static_cast<int>(r) << (strided ? " strided" : ""));
            Tensor x = strided ? non_contiguous(logits) : logits;
            Tensor t = strided ? non_contiguous(target) : target;
            Tensor loss = cross_entropy(x, t, eps, r);
            EXPECT_EQ(loss.dtype(), dt);
            EXPECT_EQ(loss.shape(), r == Reduction::none ? Shape{N} : Shape{});
            EXPECT_TRUE(all_close(loss, reduce_reference(rows, r), dt == DType::f32 ? 1e-5 : 1e-12, 1e-6));
          }
        }
      }
    }
  }
}

TEST(CrossEntropy, LargeLogitsAndLongRowsAreStable) {
  Tensor logits = random_tensor({6, 1500}, DType::f32, -1000, 1000, 23);
  Tensor ids = class_ids(6, 1500, 24);
  Tensor loss = cross_entropy(logits, ids, 0.1, Reduction::none);
  for (double v : values(loss)) EXPECT_TRUE(std::isfinite(v));
  EXPECT_TRUE(all_close(loss, ce_reference(logits, ids, 0.1), 1e-5, 1e-3));
}

TEST(CrossEntropy, MaskedClassLogitsStayFinite) {
  // A -inf logit is a class ruled out; without smoothing and with no target mass on it the loss
  // and its gradient stay finite (the gradient there is exactly 0).
  Tensor logits = from_vector<double>({0, -kInf, 1, 2, 0.5, -kInf}, {2, 3});
  Tensor ids = from_vector<int64_t>({0, 1}, {2});
  Tensor probs = from_vector<double>({0.25, 0, 0.75, 0.5, 0.5, 0}, {2, 3});
  const double e = std::exp(1.0);
  const double lse0 = std::log(1 + e), lse1 = std::log(std::exp(2.0) + std::exp(0.5));
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = logits.to(dt);
    EXPECT_TRUE(all_close(cross_entropy(x, ids, 0.0, Reduction::none), std::vector<double>{lse0, lse1 - 0.5}, 1e-6));
    EXPECT_TRUE(all_close(cross_entropy(x, probs.to(dt), 0.0, Reduction::none),
                          std::vector<double>{lse0 - 0.75, lse1 - 1.25}, 1e-6));
    Variable v(x, true);
    cross_entropy(v, ids, 0.0, Reduction::sum).backward();
    auto g = values(v.grad());
    EXPECT_EQ(g[1], 0.0);
    EXPECT_EQ(g[5], 0.0);
    EXPECT_NEAR(g[0], 1 / (1 + e) - 1, 1e-6);
  }
}

TEST(CrossEntropy, BackwardIsSoftmaxMinusTarget) {
  const int64_t N = 6, C = 4;
  Tensor logits = random_tensor({N, C}, DType::f64, -2, 2, 29);
  Tensor ids = class_ids(N, C, 30);
  const double eps = 0.2;
  std::vector<double> p = reference(values(logits), {N, C}, 1, Mode::softmax), idv = values(ids);
  for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
    CrossEntropyForward fw = cross_entropy_forward(logits, ids, eps, r);
    Tensor g = r == Reduction::none ? random_tensor({N}, DType::f64, -1, 1, 31) : scalar_tensor(0.7, DType::f64);
    std::vector<double> gv = values(g), expect(N * C);
    for (int64_t n = 0; n < N; ++n) {
      const double gn = r == Reduction::none ? gv[n] : r == Reduction::mean ? gv[0] / N : gv[0];
      for (int64_t c = 0; c < C; ++c) {
        const double q = (1 - eps) * (static_cast<int64_t>(idv[n]) == c) + eps / C;
        expect[n * C + c] = (p[n * C + c] - q) * gn;
      }
    }
    EXPECT_TRUE(all_close(cross_entropy_backward(g, logits, ids, fw.lse, eps, r), expect, 1e-12, 1e-14));
  }
}

TEST(CrossEntropyGrad, GradcheckIdsAndProbabilitiesWithAndWithoutSmoothing) {
  const int64_t N = 4, C = 3;
  for (int target_kind = 0; target_kind < 3; ++target_kind) {  // ids, probabilities, unnormalised weights
    Tensor target = target_kind == 0 ? class_ids(N, C, 37) : probabilities(N, C, 38, target_kind == 1 ? 1.0 : 1.7);
    for (double eps : {0.0, 0.2}) {
      for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
        Variable x(random_tensor({N, C}, DType::f64, -2, 2, 39), true);
        EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return cross_entropy(in[0], target, eps, r); },
                              {x}))
            << "target kind " << target_kind << " eps " << eps << " reduction " << static_cast<int>(r);
      }
    }
  }
  Variable strided(non_contiguous(random_tensor({5, 3}, DType::f64, -2, 2, 40)), true);
  Tensor ids = non_contiguous(class_ids(5, 3, 41));
  EXPECT_TRUE(gradcheck([&](const std::vector<Variable>& in) { return cross_entropy(in[0], ids, 0.1); }, {strided}));
}

TEST(CrossEntropy, ErrorsNameTheOpAndTheProblem) {
  Tensor logits = random_tensor({3, 5}, DType::f32);
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 5, 1}, {3})); },
               "cross_entropy: target class id 5 (row 1) is out of range for 5 classes (expected 0 to 4)");
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 1, -2}, {3})); }, "target class id -2 (row 2)");
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({0, 1}, {2})); },
               "cross_entropy: target shape [2] does not fit logits [3, 5] (expected [3] class ids or [3, 5] probabilities)");
  expect_error([&] { cross_entropy(logits, from_vector<int32_t>({0, 1, 2}, {3})); },
               "cross_entropy: class ids must be i64, got i32");
  expect_error([&] { cross_entropy(logits, zeros({3, 5}, DType::f64)); },
               "cross_entropy: probabilities have dtype f64 but logits have f32");
  expect_error([&] { cross_entropy(logits, class_ids(3, 5, 1), 1.5); },
               "cross_entropy: label_smoothing 1.5 out of range (expected 0 to 1)");
  expect_error([&] { cross_entropy(zeros({2, 3, 4}), class_ids(2, 3, 1)); },
               "cross_entropy: logits must be (N, C), got shape [2, 3, 4]");
  expect_error([&] { cross_entropy(full({3, 5}, 1.0, DType::i64), class_ids(3, 5, 1)); },
               "cross_entropy: logits dtype i64 not supported");
  CrossEntropyForward fw = cross_entropy_forward(logits, class_ids(3, 5, 1));
  expect_error([&] { cross_entropy_backward(zeros({3}), logits, class_ids(3, 5, 1), fw.lse); },
               "cross_entropy_backward: grad shape [3] does not match the loss shape []");
}

// ---- CUDA against the CPU ------------------------------------------------------------------

TEST(SoftmaxCuda, MatchesCpuForEveryDtypeDimAndLayout) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  // Row lengths on both sides of the warp/block switch; (9000, 3) along dim 0 takes the
  // thread-per-row kernel.
  for (const Shape& shape : {Shape{6, 9}, Shape{3, 4, 5}, Shape{4, 3000}, Shape{9000, 3}, Shape{2, 3, 4, 70}}) {
    Tensor host = random_tensor(shape, DType::f32, -8, 8, 51);
    for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
      // 16-bit inputs: compare with the CPU on the same rounded values, in f32.
      Tensor cpu_x = host.to(dt).to(dt == DType::f64 ? DType::f64 : DType::f32);
      const double rtol = dt == DType::bf16 ? 1e-2 : dt == DType::f16 ? 2e-3 : 2e-5;
      for (int64_t dim = 0; dim < static_cast<int64_t>(shape.size()); ++dim) {
        for (bool strided : {false, true}) {
          Tensor gx = host.to(dt).to(gpu);
          if (strided) gx = non_contiguous(gx);
          for (Mode mode : {Mode::softmax, Mode::log_softmax, Mode::logsumexp}) {
            SCOPED_TRACE(::testing::Message() << shape_str(shape) << " " << dtype_name(dt) << " dim " << dim
                                              << " mode " << static_cast<int>(mode) << (strided ? " strided" : ""));
            Tensor out = run(mode, gx, dim);
            EXPECT_EQ(out.dtype(), dt);
            EXPECT_TRUE(all_close(out.cpu().to(cpu_x.dtype()), run(mode, cpu_x, dim), rtol, 1e-3));
          }
          Tensor g = random_tensor(shape, DType::f32, -1, 1, 52);
          Tensor y = softmax(cpu_x, dim), ly = log_softmax(cpu_x, dim);
          Tensor gy = y.to(dt).to(gpu), gly = ly.to(dt).to(gpu), gg = g.to(dt).to(gpu);
          EXPECT_TRUE(all_close(softmax_backward(gg, gy, dim).cpu().to(cpu_x.dtype()),
                                softmax_backward(g.to(cpu_x.dtype()), y.to(dt).to(cpu_x.dtype()), dim), 5 * rtol, 1e-2));
          EXPECT_TRUE(all_close(log_softmax_backward(gg, gly, dim).cpu().to(cpu_x.dtype()),
                                log_softmax_backward(g.to(cpu_x.dtype()), ly.to(dt).to(cpu_x.dtype()), dim), 5 * rtol,
                                1e-2));
        }
      }
    }
  }
  Tensor masked = from_vector<double>({-kInf, 0, 1, -kInf, -kInf, -kInf, -kInf, -kInf}, {2, 4}, DType::f32, gpu);
  auto p = values(softmax(masked, 1).cpu());
  EXPECT_EQ(p[0], 0.0);
  EXPECT_TRUE(std::isnan(p[4]));
  EXPECT_EQ(values(logsumexp(masked, 1).cpu())[1], -kInf);
}

TEST(CrossEntropyCuda, MatchesCpu) {
  EMBER_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  for (int64_t C : {10, 1000, 3000}) {
    const int64_t N = 33;
    Tensor logits = random_tensor({N, C}, DType::f32, -5, 5, 61);
    for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
      Tensor cpu_x = logits.to(dt).to(dt == DType::f64 ? DType::f64 : DType::f32);
      const double rtol = dt == DType::bf16 ? 1e-2 : 1e-5;
      for (bool soft : {false, true}) {
        Tensor cpu_t = soft ? probabilities(N, C, 62, 1.0, cpu_x.dtype()) : class_ids(N, C, 63);
        Tensor gpu_t = soft ? cpu_t.to(dt).to(gpu) : cpu_t.to(gpu);
        for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
          SCOPED_TRACE(::testing::Message() << "C " << C << " " << dtype_name(dt) << (soft ? " soft" : " ids")
                                            << " reduction " << static_cast<int>(r));
          Variable a(cpu_x, true), b(logits.to(dt).to(gpu), true);
          Variable la = cross_entropy(a, soft ? cpu_t.to(dt).to(cpu_x.dtype()) : cpu_t, 0.1, r);
          Variable lb = cross_entropy(b, gpu_t, 0.1, r);
          EXPECT_TRUE(all_close(lb.data().cpu().to(cpu_x.dtype()), la.data(), rtol, 1e-4));
          Tensor g = r == Reduction::none ? random_tensor({N}, DType::f32, -1, 1, 64) : scalar_tensor(1.3);
          la.backward(g.to(cpu_x.dtype()));
          lb.backward(g.to(dt).to(gpu));
          EXPECT_TRUE(all_close(b.grad().cpu().to(cpu_x.dtype()), a.grad(), 5 * rtol, 1e-4));
        }
      }
    }
  }
  // CUDA's class-id check does not wait for the kernel: the next host sync throws its Error.
  expect_error([&] { cross_entropy(zeros({3, 5}, DType::f32, gpu), from_vector<int64_t>({0, 7, 9}, {3}, DType::i64, gpu)).item(); },
               "cross_entropy: target class id 7 (row 1) is out of range for 5 classes (expected 0 to 4); found on cuda:0");
  Tensor loss = cross_entropy(zeros({3, 5}, DType::f32, gpu), from_vector<int64_t>({0, -1, 2}, {3}, DType::i64, gpu));
  expect_error([&] { cuda::synchronize(); }, "cross_entropy: target class id -1 (row 1)");
  EXPECT_EQ(cuda::deferred_check_count(), 0u);  // reported once
  cuda::synchronize();
  // Good ids: nothing is reported, and the check leaves nothing pending after a sync.
  Tensor good = cross_entropy(zeros({3, 5}, DType::f32, gpu), from_vector<int64_t>({0, 4, 2}, {3}, DType::i64, gpu));
  EXPECT_NEAR(good.item(), std::log(5.0), 1e-5);
  EXPECT_EQ(cuda::deferred_check_count(), 0u);
}
