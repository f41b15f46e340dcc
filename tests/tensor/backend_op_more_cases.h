// The op harness's cases for the families with state or randomness (test_backend_ops.cpp holds
// the elementwise, reduction, normalization, GEMM/conv, pooling, loss and attention ones):
//
//   batch_norm   training and eval, with and without γ/β, fused ReLU and ReLU6, forward and
//                gradients (finite differences), running statistics over two steps
//   random       uniform, normal, bernoulli (also at an offset `first`), randint: element by
//                element against the Philox stream, plus moments of a large draw
//   dropout      dropout / drop_path against a mask built from the Philox stream (so scaling by
//                1/(1-p) and the threshold are checked exactly), gradients (the backward uses the
//                forward's mask: finite differences redraw it from the same seed), p = 0, p = 1,
//                eval identity, the kept fraction of a large draw
//   copy         contiguous() of strided and broadcast views, copy_into a transposed destination,
//                dtype conversions (f16/bf16 round trips, float → i32), device round trip, fill
//   shape ops    cat (mixed layouts), stack, pad (grow and crop)
//   mul_sum_to   its dot-product fast path (reduce's dot_rows) and its mul-then-sum fallback
//   optimizers   adamw_update (AdamW and Adam-L2) and sgd_update (weight decay, momentum,
//                dampening, Nesterov) over three steps against float64 loops
//
// The random references call philox_uniform / philox_normal (tensor/philox.h), the counter-based
// generator itself, checked on its own against the published known answer (test_tensor_core's
// Random.PhiloxMatchesKnownAnswer); everything on top of it (offsets, thresholds, ranges,
// scaling, the mask's layout, the dtype conversion, the CUDA launch) is written here from the ops'
// header comments.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "tensor/ops/adamw.h"
#include "tensor/ops/sgd.h"
#include "tensor/philox.h"
#include "tests/support/op_harness.h"
#include "tests/tensor/backend_op_references.h"

namespace ember::testing::more {

using Vars = std::vector<Variable>;
using Refs = std::vector<RefTensor>;

inline Arg val(Shape shape, double lo = -1, double hi = 1) { return Arg{.shape = std::move(shape), .lo = lo, .hi = hi}; }
inline Arg constant(Shape shape, double lo, double hi) {  // an input the gradient check leaves alone
  return Arg{.shape = std::move(shape), .lo = lo, .hi = hi, .grad = false};
}
inline Arg strided_val(Shape shape, double lo = -1, double hi = 1) {
  return Arg{.shape = std::move(shape), .lo = lo, .hi = hi, .layout = Layout::strided};
}

// Row-major coordinates of flat index i in `shape`.
inline std::vector<int64_t> unravel(const Shape& shape, int64_t i) {
  std::vector<int64_t> c(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) c[d] = i % shape[d], i /= shape[d];
  return c;
}
inline int64_t ravel(const Shape& shape, const std::vector<int64_t>& c) {
  int64_t off = 0;
  for (size_t d = 0; d < shape.size(); ++d) off = off * shape[d] + c[d];
  return off;
}
inline RefTensor concat_flat(const Refs& parts) {
  int64_t n = 0;
  for (const RefTensor& p : parts) n += p.numel();
  RefTensor r(Shape{n});
  r.v.clear();
  for (const RefTensor& p : parts) r.v.insert(r.v.end(), p.v.begin(), p.v.end());
  return r;
}
inline Tensor flat_cat(const std::vector<Tensor>& parts) {
  std::vector<Tensor> flat;
  for (const Tensor& t : parts) flat.push_back(t.contiguous().reshape({-1}));
  return cat(flat, 0);
}

// ---- references -------------------------------------------------------------------------

// batch_norm.h's formulas over x (N, C, *): training uses the batch's biased statistics, eval
// the given running ones; then γ/β (absent: 1, 0) and the clamp.
struct BatchNormRef {
  RefTensor out;
  std::vector<double> mean, var_biased;
};
inline BatchNormRef batch_norm_ref(const RefTensor& x, const RefTensor* w, const RefTensor* b, const RefTensor* rm,
                                   const RefTensor* rv, bool training, double eps, double lo, double hi) {
  const int64_t N = x.size(0), C = x.size(1), L = x.numel() / (N * C);
  BatchNormRef r{RefTensor(x.shape), {}, {}};
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) s += x.v[(n * C + c) * L + l];
    const double mu = s / static_cast<double>(N * L);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) ss += (x.v[(n * C + c) * L + l] - mu) * (x.v[(n * C + c) * L + l] - mu);
    const double var = ss / static_cast<double>(N * L);
    r.mean.push_back(mu);
    r.var_biased.push_back(var);
    const double m = training ? mu : rm->v[c], v = training ? var : rv->v[c];
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t i = (n * C + c) * L + l;
        const double z = (x.v[i] - m) / std::sqrt(v + eps) * (w ? w->v[c] : 1.0) + (b ? b->v[c] : 0.0);
        r.out.v[i] = std::min(std::max(z, lo), hi);
      }
  }
  return r;
}

// Element i of a draw with Generator(seed)'s first draw (offset 0).
inline double philox_u(uint64_t seed, uint64_t i) { return static_cast<double>(philox_uniform(seed, 0, i)); }

// dropout: keep_i = [u_i < 1 - p], y = x·keep/(1 - p). drop_path: one u per sample n (dim 0).
inline RefTensor dropout_ref(const RefTensor& x, double p, uint64_t seed, bool per_sample) {
  RefTensor r(x.shape);
  const int64_t per = per_sample ? x.numel() / x.size(0) : 1;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const bool keep = philox_u(seed, static_cast<uint64_t>(i / per)) < 1.0 - p;
    r.v[i] = keep ? x.v[i] / (1.0 - p) : 0.0;
  }
  return r;
}

// IEEE half, rounded to nearest even, written on the value (not ember's f16 type, and not the
// compiler's _Float16, which clang lacks on x86 without AVX512-FP16): the float is rounded to a
// multiple of the half spacing at its magnitude, 2^(e−10) for a normal half of exponent e ≥ −14
// and 2^−24 below; from 65520 (half way from 65504 to 2^16) up it is infinite. bfloat16 by keeping
// the top 16 bits of the float, rounded to nearest even.
inline double round_f16(double x) {
  const float f = static_cast<float>(x);
  if (!std::isfinite(f)) return f;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return std::copysign(std::numeric_limits<double>::infinity(), f);
  int e = 0;
  std::frexp(a, &e);  // a = m·2^e with m in [0.5, 1): its exponent is e − 1
  const double spacing = std::ldexp(1.0, std::max(e - 1, -14) - 10);
  return std::copysign(std::nearbyint(a / spacing) * spacing, f);  // nearbyint: ties to even
}
inline double round_bf16(double x) {
  float f = static_cast<float>(x);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// cat along dim d (inputs agree on every other dim).
inline RefTensor cat_ref(const Refs& xs, int64_t d) {
  Shape s = xs[0].shape;
  s[d] = 0;
  for (const RefTensor& x : xs) s[d] += x.shape[d];
  RefTensor r(s);
  int64_t at = 0;
  for (const RefTensor& x : xs) {
    for (int64_t i = 0; i < x.numel(); ++i) {
      std::vector<int64_t> c = unravel(x.shape, i);
      c[d] += at;
      r.v[ravel(s, c)] = x.v[i];
    }
    at += x.shape[d];
  }
  return r;
}

// pads in PyTorch order ((left, right) of the last dim first); negative pads crop.
inline RefTensor pad_ref(const RefTensor& x, const std::vector<int64_t>& pads, double value) {
  const size_t nd = x.shape.size();
  Shape s = x.shape;
  std::vector<int64_t> left(nd, 0);
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    const size_t d = nd - 1 - k;
    left[d] = pads[2 * k];
    s[d] += pads[2 * k] + pads[2 * k + 1];
  }
  RefTensor r(s);
  for (int64_t o = 0; o < r.numel(); ++o) {
    std::vector<int64_t> c = unravel(s, o);
    bool inside = true;
    for (size_t d = 0; d < nd; ++d) {
      c[d] -= left[d];
      inside = inside && c[d] >= 0 && c[d] < x.shape[d];
    }
    r.v[o] = inside ? x.v[ravel(x.shape, c)] : value;
  }
  return r;
}

// ---- cases -----------------------------------------------------------------------------

inline void add_batch_norm(std::vector<OpCase>& cases) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  struct Variant {
    const char* name;
    bool training, affine;
    double lo, hi;
    Shape x;
  };
  const Variant variants[] = {
      {"batch_norm_train", true, true, -kInf, kInf, {4, 3, 5, 2}},
      {"batch_norm_train_no_affine", true, false, -kInf, kInf, {6, 4}},
      {"batch_norm_train_relu", true, true, 0.0, kInf, {3, 4, 7}},
      {"batch_norm_train_relu6", true, true, 0.0, 6.0, {4, 3, 3, 3}},
      {"batch_norm_eval", false, true, -kInf, kInf, {4, 3, 5, 2}},
      {"batch_norm_eval_no_affine", false, false, -kInf, kInf, {5, 3, 4}},
      {"batch_norm_eval_relu6", false, true, 0.0, 6.0, {4, 3, 3, 3}},
      {"batch_norm_train_relu_no_affine", true, false, 0.0, kInf, {4, 3, 2}},  // the mask is the sign of x̂
      {"batch_norm_train_clamp_narrow", true, true, -0.3, 0.4, {5, 3}},
      {"batch_norm_eval_clamp_narrow", false, true, -0.3, 0.4, {2, 3, 2, 2}},
  };
  for (const Variant& v : variants) {
    const int64_t C = v.x[1];
    const bool relu6 = v.hi == 6.0;
    // ReLU6 needs z on both sides of both bounds: γ in [1, 4], β in [2, 4], |x̂| up to ~2.
    std::vector<Arg> args = {strided_val(v.x, -2, 3), val({C}, relu6 ? 1 : 0.5, relu6 ? 4 : 1.5),
                             val({C}, relu6 ? 2 : -1, relu6 ? 4 : 1), constant({C}, -0.5, 0.5), constant({C}, 0.5, 1.5)};
    if (!v.affine) args[1].grad = args[2].grad = false;  // unused: no gradient to check
    const bool training = v.training, affine = v.affine;
    const BatchNormClamp clamp{v.lo, v.hi};
    cases.push_back(
        {.name = v.name,
         .args = args,
         .fn = [=](const Vars& in) {
           // Fresh copies of the running stats: training updates them, which must not leak from one
           // evaluation of the gradient check into the next.
           return batch_norm(in[0], affine ? in[1] : Variable(), affine ? in[2] : Variable(), in[3].data().clone(),
                             in[4].data().clone(), training, 0.1, 1e-5, clamp);
         },
         .ref = [=](const Refs& x) {
           return batch_norm_ref(x[0], affine ? &x[1] : nullptr, affine ? &x[2] : nullptr, &x[3], &x[4], training, 1e-5,
                                 clamp.lo, clamp.hi)
               .out;
         },
         .tol = 5,
         .perf_args = {val({32, 64, 28, 28}), val({64}), val({64}), constant({64}, -0.5, 0.5), constant({64}, 0.5, 1.5)}});
  }
  // Running statistics over two training steps (momentum 0.2), then an eval step, which must
  // normalize with them and leave them alone: the second step's and the eval step's results and
  // the stats, flattened. mean ← (1-m)·mean + m·μ, var ← (1-m)·var + m·σ²·M/(M-1).
  cases.push_back(
      {.name = "batch_norm_running_stats",
       .args = {strided_val({4, 3, 2, 3}, -1, 2), constant({4, 3, 2, 3}, -2, 1), constant({3}, 0.5, 1.5),
                constant({3}, -1, 1), constant({3}, -0.5, 0.5), constant({3}, 0.5, 1.5)},
       .fn = [](const Vars& in) {
         Tensor rm = in[4].data().clone(), rv = in[5].data().clone();
         ember::batch_norm(in[0].data(), in[2].data(), in[3].data(), rm, rv, true, 0.2);
         Tensor out = ember::batch_norm(in[1].data(), in[2].data(), in[3].data(), rm, rv, true, 0.2).out;
         Tensor eval = ember::batch_norm(in[0].data(), in[2].data(), in[3].data(), rm, rv, false, 0.2).out;
         return Variable(flat_cat({out, eval, rm, rv}));
       },
       .ref = [](const Refs& x) {
         RefTensor rm = x[4], rv = x[5], out;
         for (int step = 0; step < 2; ++step) {
           BatchNormRef r = batch_norm_ref(x[step], &x[2], &x[3], nullptr, nullptr, true, 1e-5, -1e300, 1e300);
           const double M = static_cast<double>(x[step].numel() / x[step].size(1));
           for (int64_t c = 0; c < rm.numel(); ++c) {
             rm.v[c] = 0.8 * rm.v[c] + 0.2 * r.mean[c];
             rv.v[c] = 0.8 * rv.v[c] + 0.2 * r.var_biased[c] * M / (M - 1);
           }
           out = r.out;
         }
         RefTensor eval = batch_norm_ref(x[0], &x[2], &x[3], &rm, &rv, false, 1e-5, -1e300, 1e300).out;
         return concat_flat({out, eval, rm, rv});
       },
       .tol = 5,
       .grad = false});
}

// What the backward reads: save_mean = μ and save_invstd = 1/√(σ² + eps) per channel, also for
// L = 1 ((N, C, 1, 1), the squeeze-excite shape) and a 2-D input.
inline void add_batch_norm_saved(std::vector<OpCase>& cases) {
  for (Shape shape : {Shape{5, 2, 1, 1}, Shape{3, 5, 4, 3}, Shape{6, 4}}) {
    cases.push_back({.name = "batch_norm_saved_stats_" + std::to_string(shape.size()) + "d_" + std::to_string(shape.back()),
                     .args = {strided_val(shape, -2, 3)},
                     .fn = [](const Vars& in) {
                       BatchNormResult r = ember::batch_norm(in[0].data(), Tensor(), Tensor(), Tensor(), Tensor(), true);
                       return Variable(flat_cat({r.save_mean, r.save_invstd}));
                     },
                     .ref = [](const Refs& x) {
                       BatchNormRef r = batch_norm_ref(x[0], nullptr, nullptr, nullptr, nullptr, true, 1e-5, -1e300, 1e300);
                       RefTensor out(Shape{2 * static_cast<int64_t>(r.mean.size())});
                       for (size_t c = 0; c < r.mean.size(); ++c) {
                         out.v[c] = r.mean[c];
                         out.v[r.mean.size() + c] = 1 / std::sqrt(r.var_biased[c] + 1e-5);
                       }
                       return out;
                     },
                     .tol = 5,
                     .grad = false});
  }
}

inline void add_random_dropout(std::vector<OpCase>& cases) {
  constexpr uint64_t kSeed = 4242;
  const Arg carrier = Arg{.shape = {7, 37}, .grad = false};  // gives the shape, dtype and device
  auto draw_case = [&](std::string name, std::function<Tensor(const Tensor&, Generator*)> draw,
                       std::function<double(uint64_t)> element, std::vector<DType> dtypes, double tol) {
    cases.push_back({.name = std::move(name),
                     .args = {carrier},
                     .fn = [draw](const Vars& in) {
                       Generator gen(kSeed);
                       return Variable(draw(in[0].data(), &gen));
                     },
                     .ref = [element](const Refs& x) {
                       RefTensor r(x[0].shape);
                       for (int64_t i = 0; i < r.numel(); ++i) r.v[i] = element(static_cast<uint64_t>(i));
                       return r;
                     },
                     .dtypes = std::move(dtypes),
                     .tol = tol,
                     .grad = false});
  };
  const std::vector<DType> floats = {DType::f32, DType::f64, DType::bf16, DType::f16};
  draw_case("random_uniform", [](const Tensor& t, Generator* g) { return uniform(t.shape(), -2, 3, t.dtype(), t.device(), g); },
            [](uint64_t i) { return -2 + 5 * philox_u(kSeed, i); }, floats, 1);
  // Box-Muller in float on the device: its rounding, not the reference's, sets the bound.
  draw_case("random_normal", [](const Tensor& t, Generator* g) { return normal(t.shape(), 0.5, 2, t.dtype(), t.device(), g); },
            [](uint64_t i) {
              Philox4x32 b = philox4x32_10(i / 2, 0, kSeed);
              const double x1 = (static_cast<double>(b.c[(i % 2) * 2] >> 8) + 1) / 16777216.0;
              const double x2 = static_cast<double>(b.c[(i % 2) * 2 + 1] >> 8) / 16777216.0;
              return 0.5 + 2 * std::sqrt(-2 * std::log(x1)) * std::cos(2 * std::numbers::pi * x2);
            },
            {DType::f32}, 20);  // (f32 only: an f64 draw has float precision)
  draw_case("random_bernoulli", [](const Tensor& t, Generator* g) { return bernoulli(t.shape(), 0.3, t.dtype(), t.device(), g); },
            [](uint64_t i) { return philox_u(kSeed, i) < 0.3 ? 1.0 : 0.0; }, floats, 1);
  draw_case("random_bernoulli_first",
            [](const Tensor& t, Generator* g) { return bernoulli(t.shape(), 0.6, t.dtype(), t.device(), g, 1001); },
            [](uint64_t i) { return philox_u(kSeed, 1001 + i) < 0.6 ? 1.0 : 0.0; }, {DType::f32}, 1);
  draw_case("random_randint", [](const Tensor& t, Generator* g) { return randint(-3, 7, t.shape(), DType::i64, t.device(), g); },
            [](uint64_t i) { return -3 + std::floor(philox_u(kSeed, i) * 10); }, {DType::f32}, 1);
  // Moments of 2^16 draws: mean and variance of U[0,1) (1/2, 1/12) and of N(0,1) (0, 1); the
  // bound 0.02 is over 5 standard errors.
  cases.push_back({.name = "random_moments",
                   .args = {Arg{.shape = {1 << 16}, .grad = false}},
                   .fn = [](const Vars& in) {
                     Generator gen(7);
                     const Tensor& t = in[0].data();
                     Tensor u = uniform(t.shape(), 0, 1, t.dtype(), t.device(), &gen).to(DType::f64);
                     Tensor n = normal(t.shape(), 0, 1, t.dtype(), t.device(), &gen).to(DType::f64);
                     return Variable(flat_cat({mean(u), var(u, {}, 0), mean(n), var(n, {}, 0)}));
                   },
                   .ref = [](const Refs&) {
                     RefTensor r(Shape{4});
                     r.v = {0.5, 1.0 / 12, 0.0, 1.0};
                     return r;
                   },
                   .dtypes = {DType::f32},
                   .grad = false,
                   .atol = 0.02});

  // dropout / drop_path: a fresh generator per call, so the gradient check's evaluations share
  // one mask, and dx = g·mask is checked against finite differences of the forward's mask.
  for (double p : {0.3, 0.5}) {
    const bool per_sample = p == 0.5;
    cases.push_back({.name = per_sample ? "drop_path_p05" : "dropout_p03",
                     .args = {per_sample ? val({9, 3, 4}, 0.5, 1.5) : strided_val({6, 7, 5}, 0.5, 1.5)},
                     .fn = [p, per_sample](const Vars& in) {
                       Generator gen(kSeed);
                       return per_sample ? drop_path(in[0], p, true, &gen) : dropout(in[0], p, true, &gen);
                     },
                     .ref = [p, per_sample](const Refs& x) { return dropout_ref(x[0], p, kSeed, per_sample); },
                     .dtypes = floats,
                     .tol = 2});
  }
  struct Identity {
    const char* name;
    double p;
    bool training;
    double scale;  // expected y = scale·x
  };
  for (Identity id : {Identity{"dropout_p0_identity", 0.0, true, 1}, Identity{"dropout_eval_identity", 0.5, false, 1},
                      Identity{"drop_path_eval_identity", 0.5, false, 1}, Identity{"dropout_p1_zero", 1.0, true, 0}}) {
    const bool path = std::string(id.name).starts_with("drop_path");
    cases.push_back({.name = id.name,
                     .args = {strided_val({4, 5, 3})},
                     .fn = [id, path](const Vars& in) {
                       Generator gen(kSeed);
                       return path ? drop_path(in[0], id.p, id.training, &gen) : dropout(in[0], id.p, id.training, &gen);
                     },
                     .ref = [id](const Refs& x) { return refs::map(x[0], [&](double e) { return id.scale * e; }); },
                     .dtypes = floats});
  }
  // The kept fraction of 10^5 elements at p = 0.3: 0.7 within 0.01 (standard error 0.0015).
  cases.push_back({.name = "dropout_kept_fraction",
                   .args = {Arg{.shape = {200, 500}, .lo = 0.5, .hi = 1.5, .grad = false}},
                   .fn = [](const Vars& in) {
                     Generator gen(99);
                     Tensor y = dropout(in[0].data(), 0.3, true, &gen).out;
                     return Variable(mean(ne(y, 0.0).to(DType::f64)).reshape({1}));
                   },
                   .ref = [](const Refs&) {
                     RefTensor r(Shape{1});
                     r.v = {0.7};
                     return r;
                   },
                   .dtypes = {DType::f32},
                   .grad = false,
                   .atol = 0.01});
}

inline void add_copy(std::vector<OpCase>& cases) {
  auto same = [](const Refs& x) { return x[0]; };
  const std::vector<DType> all = {DType::f32, DType::f64, DType::bf16, DType::f16};
  cases.push_back({.name = "copy_contiguous_of_strided", .args = {strided_val({3, 4, 5})},
                   .fn = [](const Vars& v) { return contiguous(v[0]); }, .ref = same, .dtypes = all,
                   .perf_args = {strided_val({1024, 1024})}});
  cases.push_back({.name = "copy_contiguous_of_transposed", .args = {val({6, 5})},
                   .fn = [](const Vars& v) { return contiguous(transpose(v[0], 0, 1)); },
                   .ref = [](const Refs& x) {
                     RefTensor r({x[0].size(1), x[0].size(0)});
                     for (int64_t i = 0; i < r.size(0); ++i)
                       for (int64_t j = 0; j < r.size(1); ++j) r.at({i, j}) = x[0].at({j, i});
                     return r;
                   },
                   .dtypes = all});
  cases.push_back({.name = "copy_contiguous_of_broadcast",
                   .args = {Arg{.shape = {3, 1, 5}, .layout = Layout::broadcast, .expand_to = {3, 4, 5}}},
                   .fn = [](const Vars& v) { return contiguous(v[0]); }, .ref = same, .dtypes = all});
  // copy_into a transposed (non-contiguous) destination from a broadcast source.
  cases.push_back({.name = "copy_into_transposed_from_broadcast", .args = {val({1, 6})},
                   .fn = [](const Vars& v) {
                     const Tensor& s = v[0].data();
                     Tensor dst = empty({6, 4}, s.dtype(), s.device()).t();  // (4, 6), strides (1, 4)
                     copy_into(dst, s);
                     return Variable(dst);
                   },
                   .ref = [](const Refs& x) {
                     RefTensor r({4, 6});
                     for (int64_t i = 0; i < r.numel(); ++i) r.v[i] = x[0].v[i % 6];
                     return r;
                   },
                   .dtypes = all, .grad = false});
  // Round trips through the 16-bit dtypes round to nearest even; the gradient is the identity's.
  for (auto [name, dt, round] : {std::tuple{"copy_f16_round_trip", DType::f16, &round_f16},
                                 std::tuple{"copy_bf16_round_trip", DType::bf16, &round_bf16}}) {
    const DType mid = dt;
    auto r = round;
    cases.push_back({.name = name, .args = {strided_val({4, 9}, -300, 300)},
                     .fn = [mid](const Vars& v) { return to(to(v[0], mid), v[0].dtype()); },
                     .ref = [r](const Refs& x) { return refs::map(x[0], r); },
                     .dtypes = {DType::f32, DType::f64}, .grad = false});
  }
  cases.push_back({.name = "copy_float_to_i32", .args = {strided_val({5, 6}, -100, 100)},
                   .fn = [](const Vars& v) { return Variable(v[0].data().to(DType::i32)); },
                   .ref = [](const Refs& x) { return refs::map(x[0], [](double e) { return std::trunc(e); }); },
                   .dtypes = {DType::f32, DType::f64}, .grad = false});
  cases.push_back({.name = "copy_to_f64_and_back", .args = {strided_val({3, 7})},
                   .fn = [](const Vars& v) { return to(to(v[0], DType::f64), v[0].dtype()); }, .ref = same,
                   .dtypes = all});
  cases.push_back({.name = "copy_device_round_trip", .args = {strided_val({3, 7})},
                   .fn = [](const Vars& v) { return to(to(v[0], Device::cpu()), v[0].device()); }, .ref = same,
                   .dtypes = all});
  cases.push_back({.name = "fill_transposed_view", .args = {Arg{.shape = {5, 7}, .grad = false}},
                   .fn = [](const Vars& v) {
                     Tensor t = empty(v[0].shape(), v[0].dtype(), v[0].device());
                     fill(t.t(), -1.25);
                     return Variable(t);
                   },
                   .ref = [](const Refs& x) { return refs::map(x[0], [](double) { return -1.25; }); },
                   .dtypes = all, .grad = false});
}

inline void add_shape_ops(std::vector<OpCase>& cases) {
  cases.push_back({.name = "cat_dim1_mixed_layouts",
                   .args = {strided_val({3, 2, 4}), val({3, 5, 4}),
                            Arg{.shape = {1, 3, 4}, .layout = Layout::broadcast, .expand_to = {3, 3, 4}}},
                   .fn = [](const Vars& v) { return cat(v, 1); },
                   .ref = [](const Refs& x) { return cat_ref(x, 1); },
                   .dtypes = {DType::f32, DType::f64, DType::bf16}});
  cases.push_back({.name = "cat_last_dim", .args = {val({4, 3}), strided_val({4, 2})},
                   .fn = [](const Vars& v) { return cat(v, -1); },
                   .ref = [](const Refs& x) { return cat_ref(x, 1); }});
  cases.push_back({.name = "stack_dim1", .args = {val({3, 4}), strided_val({3, 4}), val({3, 4})},
                   .fn = [](const Vars& v) { return stack(v, 1); },
                   .ref = [](const Refs& x) {
                     Refs u;
                     for (const RefTensor& t : x) {
                       RefTensor e = t;
                       e.shape.insert(e.shape.begin() + 1, 1);
                       u.push_back(e);
                     }
                     return cat_ref(u, 1);
                   }});
  const std::vector<int64_t> pads = {1, 2, -1, 3};  // last dim grows by 1 + 2; the one before loses 1, gains 3
  cases.push_back({.name = "pad_grow_and_crop", .args = {strided_val({2, 4, 5})},
                   .fn = [pads](const Vars& v) { return pad(v[0], pads, 0.5); },
                   .ref = [pads](const Refs& x) { return pad_ref(x[0], pads, 0.5); },
                   .dtypes = {DType::f32, DType::f64, DType::f16}});
}

inline void add_mul_sum_to(std::vector<OpCase>& cases) {
  struct Variant {
    const char* name;
    Shape shape, to;
    bool strided;
  };
  for (Variant v : {Variant{"mul_sum_to_rows", {3, 4, 5, 6}, {3, 4, 1, 1}, false},         // dot_rows
                    Variant{"mul_sum_to_rows_strided", {3, 4, 5, 6}, {3, 4, 1, 1}, true},  // mul then sum
                    Variant{"mul_sum_to_inner_dims", {3, 4, 5, 6}, {1, 4, 1, 6}, false}}) {
    const Shape to = v.to;
    cases.push_back({.name = v.name,
                     .args = {v.strided ? strided_val(v.shape) : val(v.shape), val(v.shape)},
                     .fn = [to](const Vars& in) { return Variable(mul_sum_to(in[0].data(), in[1].data(), to)); },
                     .ref = [to](const Refs& x) {
                       RefTensor prod = refs::zip(x[0], x[1], [](double a, double b) { return a * b; });
                       std::vector<int64_t> dims;
                       for (size_t d = 0; d < to.size(); ++d)
                         if (to[d] == 1 && prod.shape[d] != 1) dims.push_back(static_cast<int64_t>(d));
                       return refs::reduce(prod, dims, true, refs::sum_of);
                     },
                     .tol = 2,
                     .grad = false,
                     .perf_args = {val({64, 256, 14, 14}), val({64, 256, 14, 14})}});
  }
}

// Three steps of each optimizer from (w, g, m, v) with gradient t·g at step t (g itself at
// t = 1, which the kernel must only read); the result is (w, state..., g) flattened. Shapes: a
// small 2-D one and 100003 elements (parallel chunks and a vector tail).
inline void add_optimizers(std::vector<OpCase>& cases) {
  for (Shape shape : {Shape{5, 37}, Shape{100003}}) {
    const std::string suffix = shape.size() == 1 ? "_long" : "";
    const std::vector<Arg> state = {constant(shape, -1, 1), constant(shape, -2, 2), constant(shape, -0.5, 0.5),
                                    constant(shape, 0.01, 1)};
    const std::vector<Arg> perf = {constant({1 << 22}, -1, 1), constant({1 << 22}, -2, 2), constant({1 << 22}, -0.5, 0.5),
                                   constant({1 << 22}, 0.01, 1)};
    for (bool decoupled : {true, false}) {
      const AdamWStep base{.lr = 0.01, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05,
                           .decoupled = decoupled};
      cases.push_back({.name = (decoupled ? "adamw_3_steps" : "adam_l2_3_steps") + suffix,
                       .args = state,
                       .fn = [base](const Vars& in) {
                         Tensor w = in[0].data().clone(), m = in[2].data().clone(), v = in[3].data().clone();
                         for (int64_t t = 1; t <= 3; ++t) {
                           AdamWStep s = base;
                           s.step = t;
                           adamw_update(w, t == 1 ? in[1].data() : mul(in[1].data(), double(t)), m, v, s);
                         }
                         return Variable(flat_cat({w, m, v, in[1].data()}));
                       },
                       .ref = [base](const Refs& x) {
                         RefTensor w = x[0], m = x[2], v = x[3];
                         for (int64_t t = 1; t <= 3; ++t) {
                           const double bc1 = 1 - std::pow(base.beta1, double(t)), bc2 = 1 - std::pow(base.beta2, double(t));
                           for (int64_t i = 0; i < w.numel(); ++i) {
                             double g = t * x[1].v[i];
                             if (base.decoupled) w.v[i] *= 1 - base.lr * base.weight_decay;
                             else g += base.weight_decay * w.v[i];
                             m.v[i] = base.beta1 * m.v[i] + (1 - base.beta1) * g;
                             v.v[i] = base.beta2 * v.v[i] + (1 - base.beta2) * g * g;
                             w.v[i] -= base.lr * (m.v[i] / bc1) / (std::sqrt(v.v[i] / bc2) + base.eps);
                           }
                         }
                         return concat_flat({w, m, v, x[1]});
                       },
                       .tol = 2,
                       .grad = false,
                       .perf_args = perf});
    }
    struct Variant {
      const char* name;
      double momentum, dampening, weight_decay;
      bool nesterov;
    };
    for (Variant c : {Variant{"sgd_weight_decay", 0, 0, 0.01, false}, Variant{"sgd_momentum", 0.9, 0, 0, false},
                      Variant{"sgd_momentum_dampening", 0.9, 0.2, 0.01, false}, Variant{"sgd_nesterov", 0.9, 0, 0.01, true}}) {
      const SGDStep base{.lr = 0.05, .momentum = c.momentum, .dampening = c.dampening, .weight_decay = c.weight_decay,
                         .nesterov = c.nesterov};
      cases.push_back({.name = c.name + suffix,
                       .args = {state[0], state[1], state[2]},
                       .fn = [base](const Vars& in) {
                         Tensor w = in[0].data().clone(), b = in[2].data().clone();
                         poison(b);  // the first step initializes the buffer without reading it
                         for (int64_t t = 1; t <= 3; ++t) {
                           SGDStep s = base;
                           s.first_step = t == 1;
                           sgd_update(w, t == 1 ? in[1].data() : mul(in[1].data(), double(t)), base.momentum != 0 ? b : Tensor(), s);
                         }
                         return Variable(base.momentum != 0 ? flat_cat({w, b, in[1].data()}) : flat_cat({w, in[1].data()}));
                       },
                       .ref = [base](const Refs& x) {
                         RefTensor w = x[0], b = x[2];
                         for (int64_t t = 1; t <= 3; ++t)
                           for (int64_t i = 0; i < w.numel(); ++i) {
                             double d = t * x[1].v[i] + base.weight_decay * w.v[i];
                             if (base.momentum != 0) {
                               b.v[i] = t == 1 ? d : base.momentum * b.v[i] + (1 - base.dampening) * d;
                               d = base.nesterov ? d + base.momentum * b.v[i] : b.v[i];
                             }
                             w.v[i] -= base.lr * d;
                           }
                         return base.momentum != 0 ? concat_flat({w, b, x[1]}) : concat_flat({w, x[1]});
                       },
                       .tol = 2,
                       .grad = false,
                       .perf_args = {perf[0], perf[1], perf[2]}});
    }
  }
}

inline void add_more_cases(std::vector<OpCase>& cases) {
  add_batch_norm(cases);
  add_batch_norm_saved(cases);
  add_random_dropout(cases);
  add_copy(cases);
  add_shape_ops(cases);
  add_mul_sum_to(cases);
  add_optimizers(cases);
}

}  // namespace ember::testing::more
