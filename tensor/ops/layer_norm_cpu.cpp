// Layer norm on the CPU (math: tensor/ops/layer_norm.h). Rows are split across threads; a
// row's D values stay in L1 between its passes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/layer_norm_kernels.h"

namespace ember::cpu {

namespace {

constexpr int kLanes = 8;

// Σ (x_j - shift) and Σ (x_j - shift)² over one row, in double, eight independent lanes (so
// the compiler vectorizes without reassociating). Shifting by x_0 avoids the cancellation of
// E[x²] - E[x]² when |mean| ≫ std.
template <class T>
void row_shifted_sums(const T* x, int64_t D, double shift, double& s, double& ss) {
  double a[kLanes] = {}, b[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= D; j += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      double d = static_cast<double>(x[j + k]) - shift;
      a[k] += d;
      b[k] += d * d;
    }
  for (; j < D; ++j) {
    double d = static_cast<double>(x[j]) - shift;
    a[0] += d;
    b[0] += d * d;
  }
  s = ss = 0;
  for (int k = 0; k < kLanes; ++k) {
    s += a[k];
    ss += b[k];
  }
}

// Σ h_j and Σ h_j x̂_j for h = g·γ (γ = 1 when null), x̂ = (x - mean)·rstd.
template <class T>
void row_grad_sums(const T* g, const T* x, const T* w, int64_t D, T mean, T rstd, double& sh, double& shx) {
  double a[kLanes] = {}, b[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= D; j += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      T h = w ? g[j + k] * w[j + k] : g[j + k];
      T xhat = (x[j + k] - mean) * rstd;
      a[k] += static_cast<double>(h);
      b[k] += static_cast<double>(h * xhat);
    }
  for (; j < D; ++j) {
    T h = w ? g[j] * w[j] : g[j];
    T xhat = (x[j] - mean) * rstd;
    a[0] += static_cast<double>(h);
    b[0] += static_cast<double>(h * xhat);
  }
  sh = shx = 0;
  for (int k = 0; k < kLanes; ++k) {
    sh += a[k];
    shx += b[k];
  }
}

template <class T>
void forward_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out, const Tensor& mean,
                  const Tensor& rstd, int64_t rows, int64_t D, double eps) {
  const T* px = x.data<T>();  // (R, D)
  const T* pw = weight.defined() ? weight.data<T>() : nullptr;  // (D)
  const T* pb = bias.defined() ? bias.data<T>() : nullptr;      // (D)
  T* po = out.data<T>();     // (R, D)
  T* pm = mean.data<T>();    // (R)
  T* pr = rstd.data<T>();    // (R)
  parallel_for(rows, std::max<int64_t>(1, 16384 / D), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = px + r * D;
      T* yr = po + r * D;
      double shift = static_cast<double>(xr[0]), s, ss;
      row_shifted_sums(xr, D, shift, s, ss);
      double dm = s / D;
      double var = std::max(ss / D - dm * dm, 0.0);
      const T m = static_cast<T>(shift + dm);
      const T rs = static_cast<T>(1.0 / std::sqrt(var + eps));
      pm[r] = m;
      pr[r] = rs;
      if (pw && pb) {
        for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * rs * pw[j] + pb[j];
      } else {
        for (int64_t j = 0; j < D; ++j)
          yr[j] = (xr[j] - m) * rs * (pw ? pw[j] : T(1)) + (pb ? pb[j] : T(0));
      }
    }
  });
}

template <class T>
void backward_impl(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                   const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias, int64_t rows,
                   int64_t D) {
  const T* pg = grad.data<T>();  // (R, D)
  const T* px = x.data<T>();     // (R, D)
  const T* pw = weight.defined() ? weight.data<T>() : nullptr;  // (D)
  const T* pm = mean.data<T>();  // (R)
  const T* pr = rstd.data<T>();  // (R)
  T* pdx = dx.data<T>();         // (R, D)
  // dγ, dβ: each chunk of rows sums into its own (D) buffers; the chunks are added in order.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows));
  std::vector<double> part_dw(chunks * D, 0.0), part_db(chunks * D, 0.0);  // (chunks, D)
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      double* dw = part_dw.data() + c * D;
      double* db = part_db.data() + c * D;
      for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r) {
        const T* gr = pg + r * D;
        const T* xr = px + r * D;
        T* dr = pdx + r * D;
        const T m = pm[r], rs = pr[r];
        double sh, shx;
        row_grad_sums(gr, xr, pw, D, m, rs, sh, shx);
        const T mean_h = static_cast<T>(sh / D), mean_hx = static_cast<T>(shx / D);
        for (int64_t j = 0; j < D; ++j) {
          T xhat = (xr[j] - m) * rs;
          T h = pw ? gr[j] * pw[j] : gr[j];
          dr[j] = rs * (h - mean_h - xhat * mean_hx);
          dw[j] += static_cast<double>(gr[j] * xhat);
          db[j] += static_cast<double>(gr[j]);
        }
      }
    }
  });
  T* pdw = dweight.data<T>();  // (D)
  T* pdb = dbias.data<T>();    // (D)
  for (int64_t j = 0; j < D; ++j) {
    double sw = 0, sb = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      sw += part_dw[c * D + j];
      sb += part_db[c * D + j];
    }
    pdw[j] = static_cast<T>(sw);
    pdb[j] = static_cast<T>(sb);
  }
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                        const Tensor& mean, const Tensor& rstd, int64_t rows, int64_t D, double eps) {
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    forward_impl<decltype(tag)>(x, weight, bias, out, mean, rstd, rows, D, eps);
  });
}

void layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         int64_t rows, int64_t D) {
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    backward_impl<decltype(tag)>(grad, x, weight, mean, rstd, dx, dweight, dbias, rows, D);
  });
}

}  // namespace ember::cpu
