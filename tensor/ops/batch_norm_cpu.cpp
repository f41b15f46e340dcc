// Batch norm on the CPU: parallel over channels; each channel's statistics in one fused pass
// (shifted sums in double, eight independent lanes so the loop vectorizes), then one pass to
// normalize. The math is in tensor/ops/batch_norm.h.
#include <algorithm>
#include <cmath>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/batch_norm.h"

namespace ember::cpu {

namespace {

constexpr int kLanes = 8;

// s += Σ (p[i·stride] - shift), ss += Σ (p[i·stride] - shift)² for i in [0, n).
// Shifting by a value of the channel keeps E[d²] - E[d]² free of cancellation.
template <class T>
void add_shifted_sums(const T* p, int64_t n, int64_t stride, double shift, double& s, double& ss) {
  double a[kLanes] = {}, b[kLanes] = {};
  int64_t i = 0;
  if (stride == 1) {
    for (; i + kLanes <= n; i += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        double d = static_cast<double>(p[i + k]) - shift;
        a[k] += d;
        b[k] += d * d;
      }
  }
  for (; i < n; ++i) {
    double d = static_cast<double>(p[i * stride]) - shift;
    a[0] += d;
    b[0] += d * d;
  }
  for (int k = 0; k < kLanes; ++k) {
    s += a[k];
    ss += b[k];
  }
}

// sg += Σ g, sgx += Σ g·(x - mean), both read at the same stride.
template <class T>
void add_grad_sums(const T* g, const T* x, int64_t n, int64_t stride, double mean, double& sg, double& sgx) {
  double a[kLanes] = {}, b[kLanes] = {};
  int64_t i = 0;
  if (stride == 1) {
    for (; i + kLanes <= n; i += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        double gv = static_cast<double>(g[i + k]);
        a[k] += gv;
        b[k] += gv * (static_cast<double>(x[i + k]) - mean);
      }
  }
  for (; i < n; ++i) {
    double gv = static_cast<double>(g[i * stride]);
    a[0] += gv;
    b[0] += gv * (static_cast<double>(x[i * stride]) - mean);
  }
  for (int k = 0; k < kLanes; ++k) {
    sg += a[k];
    sgx += b[k];
  }
}

// Calls fn(offset, count, stride) for the runs that make up channel c of an (N, C, L) tensor:
// N runs of L contiguous values, or (when L == 1) one run of N values at stride C.
template <class Fn>
void for_each_channel_run(const BatchNormArgs& a, int64_t c, Fn&& fn) {
  if (a.L == 1) {
    fn(c, a.N, a.C);
    return;
  }
  for (int64_t n = 0; n < a.N; ++n) fn((n * a.C + c) * a.L, a.L, int64_t{1});
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
void forward_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const Tensor& out, const Tensor& save_mean, const Tensor& save_invstd,
                  const BatchNormArgs& a) {
  const T* px = x.data<T>();  // (N, C, L)
  const T* pw = ptr_or_null<T>(weight);
  const T* pb = ptr_or_null<T>(bias);
  T* prm = running_mean.defined() ? running_mean.data<T>() : nullptr;  // (C)
  T* prv = running_var.defined() ? running_var.data<T>() : nullptr;    // (C)
  T* po = out.data<T>();                                                // (N, C, L)
  T* psm = save_mean.data<T>();                                         // (C)
  T* psi = save_invstd.data<T>();                                       // (C)
  const int64_t M = a.N * a.L;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(M, 1));
  parallel_for(a.C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double mean, invstd;
      if (a.training) {
        double shift = M > 0 ? static_cast<double>(px[c * a.L]) : 0.0, s = 0, ss = 0;
        for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
          add_shifted_sums(px + off, n, stride, shift, s, ss);
        });
        double dm = s / M;
        double var = std::max(ss / M - dm * dm, 0.0);
        mean = shift + dm;
        invstd = 1.0 / std::sqrt(var + a.eps);
        if (prm) {
          prm[c] = static_cast<T>((1 - a.momentum) * prm[c] + a.momentum * mean);
          prv[c] = static_cast<T>((1 - a.momentum) * prv[c] + a.momentum * var * M / (M - 1));
        }
      } else {
        mean = static_cast<double>(prm[c]);
        invstd = 1.0 / std::sqrt(static_cast<double>(prv[c]) + a.eps);
      }
      psm[c] = static_cast<T>(mean);
      psi[c] = static_cast<T>(invstd);
      // y = (x - μ)·(γ r) + β
      const T mean_t = static_cast<T>(mean);
      const T scale = static_cast<T>(invstd * (pw ? static_cast<double>(pw[c]) : 1.0));
      const T shift = pb ? pb[c] : T(0);
      for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
        const T* xr = px + off;
        T* yr = po + off;
        for (int64_t i = 0; i < n; ++i) yr[i * stride] = (xr[i * stride] - mean_t) * scale + shift;
      });
    }
  });
}

template <class T>
void backward_impl(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                   const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                   const BatchNormArgs& a) {
  const T* pg = grad.data<T>();  // (N, C, L)
  const T* px = x.data<T>();     // (N, C, L)
  const T* pw = ptr_or_null<T>(weight);
  const T* pm = save_mean.data<T>();    // (C)
  const T* pi = save_invstd.data<T>();  // (C)
  T* pdx = dx.data<T>();                // (N, C, L)
  T* pdw = dweight.data<T>();           // (C)
  T* pdb = dbias.data<T>();             // (C)
  const int64_t M = a.N * a.L;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(M, 1));
  parallel_for(a.C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const double mean = static_cast<double>(pm[c]), invstd = static_cast<double>(pi[c]);
      double sg = 0, sgx = 0;  // Σ g, Σ g·(x - μ)
      for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
        add_grad_sums(pg + off, px + off, n, stride, mean, sg, sgx);
      });
      pdb[c] = static_cast<T>(sg);
      pdw[c] = static_cast<T>(sgx * invstd);
      const double k = invstd * (pw ? static_cast<double>(pw[c]) : 1.0);  // γ r
      // training: dx = γr (g - Σg/M - (x - μ) r² Σg(x - μ)/M);  eval: dx = γr g
      const T k_t = static_cast<T>(k), mean_t = static_cast<T>(mean);
      const T mean_g = a.training ? static_cast<T>(sg / M) : T(0);
      const T slope = a.training ? static_cast<T>(invstd * invstd * sgx / M) : T(0);
      for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
        const T* gr = pg + off;
        const T* xr = px + off;
        T* dr = pdx + off;
        for (int64_t i = 0; i < n; ++i)
          dr[i * stride] = k_t * (gr[i * stride] - mean_g - (xr[i * stride] - mean_t) * slope);
      });
    }
  });
}

}  // namespace

void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                        const Tensor& running_var, const Tensor& out, const Tensor& save_mean,
                        const Tensor& save_invstd, const BatchNormArgs& args) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    forward_impl<decltype(tag)>(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd, args);
  });
}

void batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                         const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const BatchNormArgs& args) {
  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag) {
    backward_impl<decltype(tag)>(grad, x, weight, save_mean, save_invstd, dx, dweight, dbias, args);
  });
}

}  // namespace ember::cpu
