// CPU softmax family (f32, f64). Inputs are made contiguous, so a row is either C contiguous
// elements (dim is the last: x is (outer, C)) or C elements `inner` apart (x is (outer, C, inner)),
// in which case bands of up to kBand neighbouring rows are processed together and every pass
// reads whole cache lines. exp runs through Eigen's vectorized exp; sums accumulate in double.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/softmax_kernels.h"

namespace ember::cpu {

namespace {

constexpr int64_t kBand = 64;    // rows per band when dim is not the last
constexpr int64_t kChunk = 256;  // scratch for exp values that are summed but not stored

template <class T> using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T> using ConstMap = Eigen::Map<const Vec<T>>;
template <class T> using MutMap = Eigen::Map<Vec<T>>;

template <class T> constexpr T kInf = std::numeric_limits<T>::infinity();
// Below this argument exp underflows past the smallest normal number. Eigen's exp clamps its
// argument near there (exp(-inf) would come out as a denormal ~3e-39, not 0), so such terms are
// set to exactly 0 (relative to the row's sum, which is >= 1, they are 0 anyway).
template <class T> constexpr T kExpFloor = std::is_same_v<T, float> ? T(-87) : T(-708);

// The shift subtracted before exp: the row's max, or 0 when that is ±inf (a row of -inf then
// sums to 0: logsumexp -inf, softmax 0/0 = NaN). NaN stays NaN and poisons the row.
template <class T> T shift_of(T m) { return std::isinf(m) ? T(0) : m; }

// e = Eigen's exp(z) for z = x - shift: 0 below the floor, NaN for NaN.
template <class T> inline T exp_fix(T z, T e) { return z < kExpFloor<T> ? T(0) : (z == z ? e : z); }

// Σ a[i] (b null) or Σ a[i]·b[i] in double, over 8 independent accumulators so the adds
// pipeline instead of waiting on one another.
template <class T>
double sum_double(const T* a, const T* b, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += b ? static_cast<double>(a[i + k]) * b[i + k] : a[i + k];
  double s = 0;
  for (; i < n; ++i) s += b ? static_cast<double>(a[i]) * b[i] : a[i];
  for (int k = 0; k < 8; ++k) s += acc[k];
  return s;
}

// e[i] = exp(x[i] - shift) for n contiguous elements; returns Σ e in double.
template <class T>
double exp_row(const T* x, T shift, T* e, int64_t n) {
  MutMap<T>(e, n) = (ConstMap<T>(x, n) - shift).exp();
  for (int64_t i = 0; i < n; ++i) e[i] = exp_fix(x[i] - shift, e[i]);
  return sum_double<T>(e, nullptr, n);
}

// One row: x (C,) contiguous; y (C,), or (1,) for logsumexp.
template <class T>
void forward_row(SoftmaxMode mode, const T* x, T* y, int64_t C) {
  const T shift = shift_of(ConstMap<T>(x, C).template maxCoeff<Eigen::PropagateNaN>());
  if (mode == SoftmaxMode::softmax) {
    const double s = exp_row(x, shift, y, C);
    MutMap<T>(y, C) *= static_cast<T>(1.0 / s);
    return;
  }
  T scratch[kChunk];
  double s = 0;
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) s += exp_row(x + c0, shift, scratch, std::min(kChunk, C - c0));
  const T log_s = static_cast<T>(std::log(s));
  // (x - shift) - log s, not x - lse: x - shift is exact near the max, so confident entries keep
  // their small log-probabilities instead of an error of one ulp of lse.
  if (mode == SoftmaxMode::log_softmax) MutMap<T>(y, C) = (ConstMap<T>(x, C) - shift) - log_s;
  else *y = shift + log_s;
}

// A band of w <= kBand rows at unit spacing: row j's element c is x[c·inner + j].
// y has x's layout, or (w,) for logsumexp.
template <class T>
void forward_band(SoftmaxMode mode, const T* x, T* y, int64_t C, int64_t inner, int64_t w) {
  T m[kBand], shift[kBand], scratch[kBand];
  double s[kBand];
  for (int64_t j = 0; j < w; ++j) m[j] = -kInf<T>, s[j] = 0;
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * inner;
    for (int64_t j = 0; j < w; ++j) m[j] = (xc[j] > m[j] || xc[j] != xc[j]) ? xc[j] : m[j];  // NaN sticks
  }
  for (int64_t j = 0; j < w; ++j) shift[j] = shift_of(m[j]);
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * inner;
    T* e = mode == SoftmaxMode::softmax ? y + c * inner : scratch;
    MutMap<T>(e, w) = (ConstMap<T>(xc, w) - ConstMap<T>(shift, w)).exp();
    for (int64_t j = 0; j < w; ++j) {
      e[j] = exp_fix(xc[j] - shift[j], e[j]);
      s[j] += e[j];
    }
  }
  if (mode == SoftmaxMode::softmax) {
    T inv[kBand];
    for (int64_t j = 0; j < w; ++j) inv[j] = static_cast<T>(1.0 / s[j]);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < w; ++j) y[c * inner + j] *= inv[j];
    return;
  }
  T log_s[kBand];
  for (int64_t j = 0; j < w; ++j) log_s[j] = static_cast<T>(std::log(s[j]));
  if (mode == SoftmaxMode::logsumexp) {
    for (int64_t j = 0; j < w; ++j) y[j] = shift[j] + log_s[j];
    return;
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < w; ++j) y[c * inner + j] = (x[c * inner + j] - shift[j]) - log_s[j];
}

// One row of the backward: g, y, dx (C,) contiguous.
template <class T>
void backward_row(SoftmaxMode mode, const T* g, const T* y, T* dx, int64_t C) {
  ConstMap<T> gv(g, C), yv(y, C);
  MutMap<T> dxv(dx, C);
  if (mode == SoftmaxMode::softmax) {  // dx = y (g - Σ g y)
    dxv = yv * (gv - static_cast<T>(sum_double(g, y, C)));
    return;
  }
  const double sum_g = sum_double<T>(g, nullptr, C);  // dx = g - exp(y) Σ g
  dxv = yv.exp();
  for (int64_t c = 0; c < C; ++c) dx[c] = g[c] - exp_fix(y[c], dx[c]) * static_cast<T>(sum_g);
}

// A band of w rows (layout as forward_band) of the backward.
template <class T>
void backward_band(SoftmaxMode mode, const T* g, const T* y, T* dx, int64_t C, int64_t inner, int64_t w) {
  double acc[kBand];
  T a[kBand];
  for (int64_t j = 0; j < w; ++j) acc[j] = 0;
  for (int64_t c = 0; c < C; ++c) {
    const T *gc = g + c * inner, *yc = y + c * inner;
    if (mode == SoftmaxMode::softmax) {
      for (int64_t j = 0; j < w; ++j) acc[j] += static_cast<double>(gc[j]) * static_cast<double>(yc[j]);
    } else {
      for (int64_t j = 0; j < w; ++j) acc[j] += gc[j];
    }
  }
  for (int64_t j = 0; j < w; ++j) a[j] = static_cast<T>(acc[j]);
  for (int64_t c = 0; c < C; ++c) {
    const T *gc = g + c * inner, *yc = y + c * inner;
    T* dc = dx + c * inner;
    if (mode == SoftmaxMode::softmax) {
      for (int64_t j = 0; j < w; ++j) dc[j] = yc[j] * (gc[j] - a[j]);
    } else {
      MutMap<T>(dc, w) = ConstMap<T>(yc, w).exp();
      for (int64_t j = 0; j < w; ++j) dc[j] = gc[j] - exp_fix(yc[j], dc[j]) * a[j];
    }
  }
}

// Calls row(o) for each of `outer` rows (inner == 1) or band(o, i0, w) for each band.
template <class RowFn, class BandFn>
void for_each_row_or_band(const SoftmaxPlan& p, RowFn&& row, BandFn&& band) {
  if (p.inner == 1) {
    parallel_for(p.outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(p.C, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) row(o);
    });
    return;
  }
  const int64_t bands = (p.inner + kBand - 1) / kBand;
  parallel_for(p.outer * bands, std::max<int64_t>(1, 32768 / std::max<int64_t>(p.C * kBand, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t t = b; t < e; ++t) {
                   const int64_t o = t / bands, i0 = (t % bands) * kBand;
                   band(o, i0, std::min(kBand, p.inner - i0));
                 }
               });
}

}  // namespace

// x: (outer, C, inner) after contiguous(); out: (outer, C, inner), or (outer, inner) for logsumexp.
void softmax_forward(SoftmaxMode mode, const Tensor& x_in, const Tensor& out, const SoftmaxPlan& p) {
  const Tensor x = p.contiguous ? x_in : x_in.contiguous();
  const char* name = mode == SoftmaxMode::softmax ? "softmax" : mode == SoftmaxMode::log_softmax ? "log_softmax" : "logsumexp";
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = out.data<T>();
    const int64_t C = p.C, inner = p.inner, out_c = mode == SoftmaxMode::logsumexp ? 1 : C;
    for_each_row_or_band(
        p, [&](int64_t o) { forward_row(mode, px + o * C, py + o * out_c, C); },
        [&](int64_t o, int64_t i0, int64_t w) {
          forward_band(mode, px + o * C * inner + i0, py + o * out_c * inner + i0, C, inner, w);
        });
  });
}

// grad, y, dx: (outer, C, inner) after contiguous().
void softmax_backward(SoftmaxMode mode, const Tensor& grad_in, const Tensor& y_in, const Tensor& dx,
                      const SoftmaxPlan& p) {
  const Tensor grad = p.contiguous ? grad_in : grad_in.contiguous();
  const Tensor y = p.contiguous ? y_in : y_in.contiguous();
  dispatch_float(y.dtype(), mode == SoftmaxMode::softmax ? "softmax_backward" : "log_softmax_backward",
                 [&](auto tag) {
                   using T = decltype(tag);
                   const T *pg = grad.data<T>(), *py = y.data<T>();
                   T* pd = dx.data<T>();
                   const int64_t C = p.C, inner = p.inner;
                   for_each_row_or_band(
                       p, [&](int64_t o) { backward_row(mode, pg + o * C, py + o * C, pd + o * C, C); },
                       [&](int64_t o, int64_t i0, int64_t w) {
                         const int64_t off = o * C * inner + i0;
                         backward_band(mode, pg + off, py + off, pd + off, C, inner, w);
                       });
                 });
}

}  // namespace ember::cpu
