// Batch norm on the CPU, in channel blocks: a task takes the channels [c0, c1) of every sample,
// whose values are one contiguous span of S = (c1 − c0)·L per sample, so every pass reads memory
// in order, in long runs, however small the planes are (a channel's own run is L values: 9 late
// in EfficientNet at 96×96, too short to vectorize or to prefetch). Each pass is one vector loop
// over the span per sample, with the per-channel constants expanded to the span once per block
// (long planes instead keep them scalar and loop per channel: kWideRun below):
//   statistics   s[i] += x − shift,  ss[i] += (x − shift)²      then per channel Σ over its L slots
//   normalize    y = clamp((x − μ)·γr + β)
//   backward     sg[i] += g′,  sgx[i] += g′·(x − μ)             then per channel Σ over its L slots
//                dx = γr·(g′ − Σg′/M − (x − μ)·r²·Σg′(x − μ)/M)
// Per-slot sums are kept in T over at most kFlush samples and then added in double, and the slots
// of a channel are summed in double (the shift, a value of the channel, keeps E[d²] − E[d]² free
// of cancellation). A block is sized so that its values (and, backward, its gradients) stay in
// L2 between the two passes. The math is in tensor/ops/batch_norm.h.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/ops/batch_norm_kernels.h"

namespace ember::cpu {

namespace {

constexpr int64_t kFlush = 32;  // samples summed in T before the sums move to double

// Channels per block: about `span` values per sample, at least one channel, and blocks enough
// for the threads to share.
int64_t channels_per_block(const BatchNormArgs& a, int64_t span) {
  const int64_t by_span = std::max<int64_t>(1, span / std::max<int64_t>(a.L, 1));
  const int64_t by_threads = std::max<int64_t>(1, (a.C + 4 * num_threads() - 1) / (4 * num_threads()));
  return std::min(by_span, by_threads);
}

// Runs fn(c0, c1) for every block of channels, blocks shared among the threads.
template <class Fn>
void for_each_block(const BatchNormArgs& a, int64_t span, Fn&& fn) {
  const int64_t per = channels_per_block(a, span), blocks = (a.C + per - 1) / per;
  parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) fn(blk * per, std::min(a.C, (blk + 1) * per));
  });
}

// dst[(c − c0)·L + l] = v[c − c0] for the block's span.
template <class T>
void expand(const std::vector<T>& v, int64_t L, std::vector<T>& dst) {
  for (size_t c = 0; c < v.size(); ++c) std::fill(dst.begin() + c * L, dst.begin() + (c + 1) * L, v[c]);
}

// Per-slot sums of two quantities over the samples: add(n, a, b) adds sample n's values into the
// T slots a, b (S of them, `per` for each channel in turn); the result is the per-channel sums in
// double.
template <class T, class Add>
void channel_sums(int64_t N, int64_t per, int64_t S, Add&& add, std::vector<double>& sum_a, std::vector<double>& sum_b) {
  std::vector<T> a(S), b(S);
  std::vector<double> da(S, 0.0), db(S, 0.0);
  for (int64_t n0 = 0; n0 < N; n0 += kFlush) {
    std::fill(a.begin(), a.end(), T(0));
    std::fill(b.begin(), b.end(), T(0));
    for (int64_t n = n0; n < std::min(N, n0 + kFlush); ++n) add(n, a.data(), b.data());
    for (int64_t i = 0; i < S; ++i) {
      da[i] += static_cast<double>(a[i]);
      db[i] += static_cast<double>(b[i]);
    }
  }
  const int64_t channels = S / per;
  sum_a.assign(channels, 0.0);
  sum_b.assign(channels, 0.0);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t l = 0; l < per; ++l) {
      sum_a[c] += da[c * per + l];
      sum_b[c] += db[c * per + l];
    }
}

// Long planes (L ≥ kWideRun; early in the network, 2304 values at 48×48) need no expanded
// constants: a channel's run is long enough to vectorize by itself, with its constants scalar and
// its sums in kLanes slots. Expanding them there only adds L-sized streams to every pass (the
// backward at 48×48 ran 1.6× slower with them).
constexpr int64_t kWideRun = 512, kLanes = 16;

// a[j] += f(v[l]) over a run, lane j = l mod kLanes: fn(l, lane) per value.
template <class Fn>
void over_run_in_lanes(int64_t L, Fn&& fn) {
  int64_t l = 0;
  for (; l + kLanes <= L; l += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) fn(l + j, j);
  for (; l < L; ++l) fn(l, l - (L / kLanes) * kLanes);
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Values per sample in a block: forward keeps x (N·span values) in L2 between its passes,
// backward x and g.
constexpr int64_t kForwardSpan = 2048, kBackwardSpan = 1024;

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
  const int64_t N = a.N, C = a.C, L = a.L, M = N * L;
  // Without a clamp the bounds are ±inf and both tests fail: one loop serves both.
  const T lo = static_cast<T>(a.clamp.lo), hi = static_cast<T>(a.clamp.hi);
  for_each_block(a, kForwardSpan, [&](int64_t c0, int64_t c1) {
    const int64_t B = c1 - c0, S = B * L;
    const bool wide = L >= kWideRun;
    std::vector<T> mean_c(B), scale_c(B), beta_c(B), e_mean(wide ? 0 : S), e_scale(wide ? 0 : S), e_beta(wide ? 0 : S);
    if (a.training) {
      std::vector<T> shift_c(B);
      for (int64_t c = 0; c < B; ++c) shift_c[c] = N > 0 ? px[(c0 + c) * L] : T(0);
      std::vector<double> s, ss;
      if (wide) {
        channel_sums<T>(N, kLanes, B * kLanes, [&](int64_t n, T* __restrict sa, T* __restrict sb) {
          for (int64_t c = 0; c < B; ++c) {
            const T* __restrict xr = px + (n * C + c0 + c) * L;
            const T sh = shift_c[c];
            T* __restrict a = sa + c * kLanes;
            T* __restrict b2 = sb + c * kLanes;
            over_run_in_lanes(L, [&](int64_t l, int64_t j) {
              const T d = xr[l] - sh;
              a[j] += d;
              b2[j] += d * d;
            });
          }
        }, s, ss);
      } else {
        expand(shift_c, L, e_mean);
        channel_sums<T>(N, L, S, [&](int64_t n, T* __restrict sa, T* __restrict sb) {
          const T* __restrict xr = px + (n * C + c0) * L;
          const T* __restrict sh = e_mean.data();
          for (int64_t i = 0; i < S; ++i) {
            const T d = xr[i] - sh[i];
            sa[i] += d;
            sb[i] += d * d;
          }
        }, s, ss);
      }
      for (int64_t c = 0; c < B; ++c) {
        const double dm = s[c] / M, var = std::max(ss[c] / M - dm * dm, 0.0);
        const double mean = static_cast<double>(shift_c[c]) + dm, invstd = 1.0 / std::sqrt(var + a.eps);
        if (prm) {
          prm[c0 + c] = static_cast<T>((1 - a.momentum) * prm[c0 + c] + a.momentum * mean);
          prv[c0 + c] = static_cast<T>((1 - a.momentum) * prv[c0 + c] + a.momentum * var * M / (M - 1));
        }
        psm[c0 + c] = static_cast<T>(mean);
        psi[c0 + c] = static_cast<T>(invstd);
      }
    } else {
      for (int64_t c = c0; c < c1; ++c) {
        psm[c] = prm[c];
        psi[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(prv[c]) + a.eps));
      }
    }
    // y = (x − μ)·(γ r) + β, clamped when asked; μ and r as saved, so that the backward
    // recomputes the same z.
    for (int64_t c = 0; c < B; ++c) {
      mean_c[c] = psm[c0 + c];
      scale_c[c] = static_cast<T>(static_cast<double>(psi[c0 + c]) * (pw ? static_cast<double>(pw[c0 + c]) : 1.0));
      beta_c[c] = pb ? pb[c0 + c] : T(0);
    }
    // One loop for both layouts: per value (stride 1) or one constant per call (stride 0).
    auto normalize = [&](const T* __restrict xr, T* __restrict yr, int64_t n_values, const T* __restrict em,
                         const T* __restrict es, const T* __restrict eb, int64_t stride) {
      for (int64_t i = 0; i < n_values; ++i) {
        const int64_t k = i * stride;
        T z = (xr[i] - em[k]) * es[k] + eb[k];
        z = z < lo ? lo : z;  // NaN passes through, as clamp does
        yr[i] = z > hi ? hi : z;
      }
    };
    if (wide) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < B; ++c) {
          const int64_t off = (n * C + c0 + c) * L;
          normalize(px + off, po + off, L, &mean_c[c], &scale_c[c], &beta_c[c], 0);
        }
    } else {
      expand(mean_c, L, e_mean);
      expand(scale_c, L, e_scale);
      expand(beta_c, L, e_beta);
      for (int64_t n = 0; n < N; ++n)
        normalize(px + (n * C + c0) * L, po + (n * C + c0) * L, S, e_mean.data(), e_scale.data(), e_beta.data(), 1);
    }
  });
}

template <class T, bool Clamp>
void backward_block(const T* pg, const T* px, const T* pw, const T* pb, const T* pm, const T* pi, T* pdx, T* pdw,
                    T* pdb, const BatchNormArgs& a, int64_t c0, int64_t c1) {
  const int64_t N = a.N, C = a.C, L = a.L, M = N * L, B = c1 - c0, S = B * L;
  const bool wide = L >= kWideRun;
  const T lo = static_cast<T>(a.clamp.lo), hi = static_cast<T>(a.clamp.hi);
  std::vector<T> mean_c(B), k_c(B), beta_c(B), e_mean, e_k, e_beta;
  for (int64_t c = 0; c < B; ++c) {
    mean_c[c] = pm[c0 + c];
    k_c[c] = static_cast<T>(static_cast<double>(pi[c0 + c]) * (pw ? static_cast<double>(pw[c0 + c]) : 1.0));  // γ r
    beta_c[c] = pb ? pb[c0 + c] : T(0);
  }
  if (!wide) {
    e_mean.resize(S), e_k.resize(S), e_beta.resize(S);
    expand(mean_c, L, e_mean);
    expand(k_c, L, e_k);
    expand(beta_c, L, e_beta);
  }
  // g′ = g, or with a clamp g·[lo ≤ z ≤ hi], z = (x − μ)·γr + β exactly as the forward had it:
  // one select, no branch, so that the loops stay vectorized (0 outside, whatever g is).
  auto grad_of = [=](T g, T xv, T m, T k, T b) {
    if constexpr (Clamp) {
      const T z = (xv - m) * k + b;
      return ((lo <= z) & (z <= hi)) ? g : T(0);
    } else {
      return g;
    }
  };
  std::vector<double> sg, sgx;  // per channel Σ g′, Σ g′·(x − μ)
  if (wide) {
    channel_sums<T>(N, kLanes, B * kLanes, [&](int64_t n, T* __restrict sa, T* __restrict sb) {
      for (int64_t c = 0; c < B; ++c) {
        const T* __restrict gr = pg + (n * C + c0 + c) * L;
        const T* __restrict xr = px + (n * C + c0 + c) * L;
        const T m = mean_c[c], k = k_c[c], bt = beta_c[c];
        T* __restrict ga = sa + c * kLanes;
        T* __restrict gb = sb + c * kLanes;
        over_run_in_lanes(L, [&](int64_t l, int64_t j) {
          const T gv = grad_of(gr[l], xr[l], m, k, bt);
          ga[j] += gv;
          gb[j] += gv * (xr[l] - m);
        });
      }
    }, sg, sgx);
  } else {
    channel_sums<T>(N, L, S, [&](int64_t n, T* __restrict sa, T* __restrict sb) {
      const T* __restrict gr = pg + (n * C + c0) * L;
      const T* __restrict xr = px + (n * C + c0) * L;
      const T *__restrict em = e_mean.data(), *__restrict ek = e_k.data(), *__restrict eb = e_beta.data();
      for (int64_t i = 0; i < S; ++i) {
        const T gv = grad_of(gr[i], xr[i], em[i], ek[i], eb[i]);
        sa[i] += gv;
        sb[i] += gv * (xr[i] - em[i]);
      }
    }, sg, sgx);
  }
  // training: dx = γr (g′ − Σg′/M − (x − μ) r² Σg′(x − μ)/M);  eval: dx = γr g′
  std::vector<T> mg_c(B), slope_c(B);
  for (int64_t c = 0; c < B; ++c) {
    const double invstd = static_cast<double>(pi[c0 + c]);
    pdb[c0 + c] = static_cast<T>(sg[c]);
    pdw[c0 + c] = static_cast<T>(sgx[c] * invstd);
    mg_c[c] = a.training ? static_cast<T>(sg[c] / M) : T(0);
    slope_c[c] = a.training ? static_cast<T>(invstd * invstd * sgx[c] / M) : T(0);
  }
  // One loop for both layouts: per value (stride 1) or one constant per call (stride 0).
  auto apply = [&](const T* __restrict gr, const T* __restrict xr, T* __restrict dr, int64_t n_values,
                   const T* __restrict em, const T* __restrict ek, const T* __restrict eb, const T* __restrict eg,
                   const T* __restrict es, int64_t stride) {
    for (int64_t i = 0; i < n_values; ++i) {
      const int64_t q = i * stride;
      dr[i] = ek[q] * (grad_of(gr[i], xr[i], em[q], ek[q], eb[q]) - eg[q] - (xr[i] - em[q]) * es[q]);
    }
  };
  if (wide) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < B; ++c) {
        const int64_t off = (n * C + c0 + c) * L;
        apply(pg + off, px + off, pdx + off, L, &mean_c[c], &k_c[c], &beta_c[c], &mg_c[c], &slope_c[c], 0);
      }
  } else {
    std::vector<T> e_mg(S), e_slope(S);
    expand(mg_c, L, e_mg);
    expand(slope_c, L, e_slope);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c0) * L;
      apply(pg + off, px + off, pdx + off, S, e_mean.data(), e_k.data(), e_beta.data(), e_mg.data(), e_slope.data(), 1);
    }
  }
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
  for_each_block(a, kBackwardSpan, [&](int64_t c0, int64_t c1) {
    if (a.clamp.active()) backward_block<T, true>(pg, px, pw, pb, pm, pi, pdx, pdw, pdb, a, c0, c1);
    else backward_block<T, false>(pg, px, pw, pb, pm, pi, pdx, pdw, pdb, a, c0, c1);
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
