// Batch norm on the CPU: parallel over channels; each channel's statistics in one fused pass
// (shifted sums in double, eight independent lanes so the loop vectorizes), then one pass to
// normalize (and clamp, when a ReLU/ReLU6 is fused in). The math is in tensor/ops/batch_norm.h.
#include <algorithm>
#include <cmath>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/batch_norm_kernels.h"

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

// sg += Σ g', sgx += Σ g'·(x - mean), g' = grad_of(g, x), both read at the same stride. Within
// one run (at most one plane, N·L values apart) the sums are kept in T across kGradLanes lanes,
// which keeps the loop in T's vector width (a masked g' in double would not vectorize); the runs
// are summed in double.
constexpr int kGradLanes = 16;
template <class T, class GradOf>
void add_grad_sums(const T* g, const T* x, int64_t n, int64_t stride, T mean, GradOf grad_of, double& sg,
                   double& sgx) {
  T a[kGradLanes] = {}, b[kGradLanes] = {};
  int64_t i = 0;
  if (stride == 1) {
    for (; i + kGradLanes <= n; i += kGradLanes)
      for (int k = 0; k < kGradLanes; ++k) {
        const T gv = grad_of(g[i + k], x[i + k]);
        a[k] += gv;
        b[k] += gv * (x[i + k] - mean);
      }
  }
  double sa = 0, sb = 0;
  for (int k = 0; k < kGradLanes; ++k) {
    sa += a[k];
    sb += b[k];
  }
  for (; i < n; ++i) {
    const T gv = grad_of(g[i * stride], x[i * stride]);
    sa += gv;
    sb += static_cast<double>(gv) * static_cast<double>(x[i * stride] - mean);
  }
  sg += sa;
  sgx += sb;
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
      // y = (x - μ)·(γ r) + β, clamped when asked; μ and r as saved, so that the backward
      // recomputes the same z.
      const T mean_t = psm[c];
      const T scale = static_cast<T>(static_cast<double>(psi[c]) * (pw ? static_cast<double>(pw[c]) : 1.0));
      const T shift = pb ? pb[c] : T(0);
      // Without a clamp the bounds are ±inf and both tests fail: one loop serves both.
      const T lo = static_cast<T>(a.clamp.lo), hi = static_cast<T>(a.clamp.hi);
      for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
        const T* xr = px + off;
        T* yr = po + off;
        for (int64_t i = 0; i < n; ++i) {
          T z = (xr[i * stride] - mean_t) * scale + shift;
          z = z < lo ? lo : z;  // NaN passes through, as clamp does
          yr[i * stride] = z > hi ? hi : z;
        }
      });
    }
  });
}

template <class T>
void backward_impl(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight,
                   const Tensor& dbias, const BatchNormArgs& a) {
  const T* pg = grad.data<T>();  // (N, C, L)
  const T* px = x.data<T>();     // (N, C, L)
  const T* pw = ptr_or_null<T>(weight);
  const T* pb = ptr_or_null<T>(bias);
  const T* pm = save_mean.data<T>();    // (C)
  const T* pi = save_invstd.data<T>();  // (C)
  T* pdx = dx.data<T>();                // (N, C, L)
  T* pdw = dweight.data<T>();           // (C)
  T* pdb = dbias.data<T>();             // (C)
  const int64_t M = a.N * a.L;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(M, 1));
  parallel_for(a.C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const double invstd = static_cast<double>(pi[c]);
      const double k = invstd * (pw ? static_cast<double>(pw[c]) : 1.0);  // γ r
      const T k_t = static_cast<T>(k), mean_t = pm[c], shift = pb ? pb[c] : T(0);
      // g' = g, or with a clamp g·[lo ≤ z ≤ hi], z = (x - μ)·γr + β exactly as the forward had it.
      auto channel = [&](auto grad_of) {
        double sg = 0, sgx = 0;  // Σ g', Σ g'·(x - μ)
        for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
          add_grad_sums(pg + off, px + off, n, stride, mean_t, grad_of, sg, sgx);
        });
        pdb[c] = static_cast<T>(sg);
        pdw[c] = static_cast<T>(sgx * invstd);
        // training: dx = γr (g' - Σg'/M - (x - μ) r² Σg'(x - μ)/M);  eval: dx = γr g'
        const T mean_g = a.training ? static_cast<T>(sg / M) : T(0);
        const T slope = a.training ? static_cast<T>(invstd * invstd * sgx / M) : T(0);
        for_each_channel_run(a, c, [&](int64_t off, int64_t n, int64_t stride) {
          const T* gr = pg + off;
          const T* xr = px + off;
          T* dr = pdx + off;
          for (int64_t i = 0; i < n; ++i)
            dr[i * stride] = k_t * (grad_of(gr[i * stride], xr[i * stride]) - mean_g - (xr[i * stride] - mean_t) * slope);
        });
      };
      if (a.clamp.active()) {
        const T lo = static_cast<T>(a.clamp.lo), hi = static_cast<T>(a.clamp.hi);
        channel([=](T g, T xv) {  // one select, no branch, so that the loops stay vectorized
          const T z = (xv - mean_t) * k_t + shift;
          return ((lo <= z) & (z <= hi)) ? g : T(0);  // 0 outside, whatever g is (as clamp's backward)
        });
      } else {
        channel([](T g, T) { return g; });
      }
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

void batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, const BatchNormArgs& args) {
  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag) {
    backward_impl<decltype(tag)>(grad, x, weight, bias, save_mean, save_invstd, dx, dweight, dbias, args);
  });
}

}  // namespace ember::cpu
