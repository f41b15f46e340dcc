// Batch norm on CUDA (math: tensor/ops/batch_norm.h).
//   forward:  batch_norm_stats_kernel (a block per channel, Welford, updates running stats)
//             or batch_norm_eval_stats_kernel, then batch_norm_apply_kernel (elementwise).
//   backward: batch_norm_grad_sums_kernel (a block per channel: Σg, Σg(x-μ) -> dbias, dweight),
//             then batch_norm_backward_input_kernel (elementwise).
// A fused clamp (ReLU/ReLU6) is applied by the apply kernel; both backward kernels first mask g
// by lo ≤ z ≤ hi with z recomputed from x (ClampGrad), so it costs no extra pass.
// A block per channel is the plain first version: it leaves SMs idle when C is small and N·L
// is large; splitting each channel over several blocks is the next step.
#include <cfloat>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/batch_norm_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kBlock = 512;

// Running (count, mean, M2) of Welford's algorithm, merged with Chan's formula.
template <class A>
struct Welford {
  A n, mean, m2;
};

template <class A>
__device__ __forceinline__ Welford<A> welford_merge(const Welford<A>& a, const Welford<A>& b) {
  if (b.n == A(0)) return a;
  if (a.n == A(0)) return b;
  A n = a.n + b.n;
  A delta = b.mean - a.mean;
  A wb = b.n / n;
  return {n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * a.n * wb};
}

// Element i in [0, N·L) of channel c of an (N, C, L) tensor.
__device__ __forceinline__ int64_t channel_offset(int64_t i, int64_t c, int64_t C, int64_t L) {
  int64_t n = i / L;
  return (n * C + c) * L + (i - n * L);
}

// T: x's type (f32, f64, bf16, f16); A = acc_t<T>: the arithmetic's and every per-channel
// tensor's (mean, invstd, running stats, weight, bias, their gradients): f32 for 16-bit T.

// One block per channel: save_mean, save_invstd (C); running stats updated when non-null.
template <class T, class A = acc_t<T>>
__global__ void batch_norm_stats_kernel(const T* x, A* save_mean, A* save_invstd, A* running_mean, A* running_var,
                                        int64_t C, int64_t L, int64_t M, double momentum, double eps) {
  __shared__ Welford<A> part[kBlock];
  const int64_t c = blockIdx.x;
  Welford<A> w{A(0), A(0), A(0)};
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    A v = static_cast<A>(x[channel_offset(i, c, C, L)]);
    w.n += A(1);
    A delta = v - w.mean;
    w.mean += delta / w.n;
    w.m2 += delta * (v - w.mean);
  }
  part[threadIdx.x] = w;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] = welford_merge(part[threadIdx.x], part[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    A mean = part[0].mean;
    A var = part[0].m2 / static_cast<A>(M);  // biased
    save_mean[c] = mean;
    save_invstd[c] = static_cast<A>(1.0 / sqrt(static_cast<double>(var) + eps));
    if (running_mean) {
      running_mean[c] = static_cast<A>((1 - momentum) * running_mean[c] + momentum * mean);
      running_var[c] = static_cast<A>((1 - momentum) * running_var[c] +
                                      momentum * static_cast<double>(var) * M / (M - 1));
    }
  }
}

template <class A>
__global__ void batch_norm_eval_stats_kernel(const A* running_mean, const A* running_var, A* save_mean,
                                             A* save_invstd, int64_t C, double eps) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  save_mean[c] = running_mean[c];
  save_invstd[c] = static_cast<A>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
}

// The fused clamp's bounds (±inf when there is none).
template <class T>
struct ClampBounds {
  T lo, hi;
  bool active;
};

// y = clamp((x - μ_c)·γ_c r_c + β_c, lo, hi) over (N, C, L); weight / bias may be null.
template <class T, class A = acc_t<T>>
__global__ void batch_norm_apply_kernel(const T* x, const A* mean, const A* invstd, const A* weight, const A* bias,
                                        T* out, int64_t total, int64_t C, int64_t L, ClampBounds<A> cb) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t c = (i / L) % C;
    A scale = invstd[c] * (weight ? weight[c] : A(1));
    A z = (static_cast<A>(x[i]) - mean[c]) * scale + (bias ? bias[c] : A(0));
    z = z < cb.lo ? cb.lo : z;  // NaN passes through, as clamp does
    out[i] = convert<T>(z > cb.hi ? cb.hi : z);
  }
}

// g masked by the fused clamp: g where lo ≤ z ≤ hi, z recomputed as the apply kernel did.
template <class A>
__device__ __forceinline__ A clamp_grad(A g, A x, int64_t c, const A* mean, const A* invstd, const A* weight,
                                        const A* bias, ClampBounds<A> cb) {
  if (!cb.active) return g;
  A z = (x - mean[c]) * (invstd[c] * (weight ? weight[c] : A(1))) + (bias ? bias[c] : A(0));
  return cb.lo <= z && z <= cb.hi ? g : A(0);
}

// One block per channel: dbias = Σg, dweight = r·Σg(x-μ); the two sums also go to `sums`
// (C, 2) for the input-gradient kernel.
template <class T, class A = acc_t<T>>
__global__ void batch_norm_grad_sums_kernel(const T* grad, const T* x, const A* mean, const A* invstd,
                                            const A* weight, const A* bias, ClampBounds<A> cb, A* dweight,
                                            A* dbias, A* sums, int64_t C, int64_t L, int64_t M) {
  __shared__ A sg_part[kBlock];
  __shared__ A sgx_part[kBlock];
  const int64_t c = blockIdx.x;
  const A mu = mean[c];
  A sg = 0, sgx = 0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    int64_t off = channel_offset(i, c, C, L);
    const A xv = static_cast<A>(x[off]);
    A g = clamp_grad(static_cast<A>(grad[off]), xv, c, mean, invstd, weight, bias, cb);
    sg += g;
    sgx += g * (xv - mu);
  }
  sg_part[threadIdx.x] = sg;
  sgx_part[threadIdx.x] = sgx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sg_part[threadIdx.x] += sg_part[threadIdx.x + s];
      sgx_part[threadIdx.x] += sgx_part[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    dbias[c] = sg_part[0];
    dweight[c] = sgx_part[0] * invstd[c];
    sums[2 * c] = sg_part[0];
    sums[2 * c + 1] = sgx_part[0];
  }
}

// training: dx = γr (g - Σg/M - (x - μ) r² Σg(x-μ)/M);  eval: dx = γr g.
template <class T, class A = acc_t<T>>
__global__ void batch_norm_backward_input_kernel(const T* grad, const T* x, const A* mean, const A* invstd,
                                                 const A* weight, const A* bias, ClampBounds<A> cb, const A* sums,
                                                 T* dx, int64_t total, int64_t C, int64_t L, int64_t M,
                                                 bool training) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t c = (i / L) % C;
    const A xi = static_cast<A>(x[i]);
    A gi = clamp_grad(static_cast<A>(grad[i]), xi, c, mean, invstd, weight, bias, cb);
    A r = invstd[c];
    A k = r * (weight ? weight[c] : A(1));
    if (training) {
      A mean_g = sums[2 * c] / static_cast<A>(M);
      A slope = r * r * sums[2 * c + 1] / static_cast<A>(M);
      dx[i] = convert<T>(k * (gi - mean_g - (xi - mean[c]) * slope));
    } else {
      dx[i] = convert<T>(k * gi);
    }
  }
}

int elementwise_grid(int64_t n) {
  int64_t g = (n + 255) / 256;
  return static_cast<int>(g < 1 ? 1 : (g > 65535 * 16 ? 65535 * 16 : g));
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

template <class A>
ClampBounds<A> bounds_of(const BatchNormArgs& a) {
  return {static_cast<A>(a.clamp.lo), static_cast<A>(a.clamp.hi), a.clamp.active()};
}

template <class T>
void forward_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const Tensor& out, const Tensor& save_mean, const Tensor& save_invstd,
                  const BatchNormArgs& a) {
  using A = acc_t<T>;
  cudaStream_t stream = stream_of(current_stream());
  const int64_t M = a.N * a.L, total = a.N * a.C * a.L;
  if (a.C == 0) return;
  A* sm = static_cast<A*>(save_mean.data_ptr());     // (C)
  A* si = static_cast<A*>(save_invstd.data_ptr());   // (C)
  if (a.training) {
    A* rm = running_mean.defined() ? static_cast<A*>(running_mean.data_ptr()) : nullptr;  // (C)
    A* rv = running_var.defined() ? static_cast<A*>(running_var.data_ptr()) : nullptr;    // (C)
    batch_norm_stats_kernel<T><<<static_cast<unsigned>(a.C), kBlock, 0, stream>>>(
        static_cast<const T*>(x.data_ptr()), sm, si, rm, rv, a.C, a.L, M, a.momentum, a.eps);
    EMBER_CUDA_CHECK_LAUNCH("batch_norm_stats_kernel");
  } else {
    batch_norm_eval_stats_kernel<A><<<ceil_div(a.C, 256), 256, 0, stream>>>(
        static_cast<const A*>(running_mean.data_ptr()), static_cast<const A*>(running_var.data_ptr()), sm, si, a.C,
        a.eps);
    EMBER_CUDA_CHECK_LAUNCH("batch_norm_eval_stats_kernel");
  }
  if (total == 0) return;
  batch_norm_apply_kernel<T><<<elementwise_grid(total), 256, 0, stream>>>(
      static_cast<const T*>(x.data_ptr()), sm, si, ptr_or_null<A>(weight), ptr_or_null<A>(bias),
      static_cast<T*>(out.data_ptr()), total, a.C, a.L, bounds_of<A>(a));
  EMBER_CUDA_CHECK_LAUNCH("batch_norm_apply_kernel");
}

template <class T>
void backward_impl(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight,
                   const Tensor& dbias, const BatchNormArgs& a) {
  using A = acc_t<T>;
  cudaStream_t stream = stream_of(current_stream());
  const int64_t M = a.N * a.L, total = a.N * a.C * a.L;
  if (a.C == 0) return;
  Tensor sums = empty({a.C, 2}, dweight.dtype(), x.device());  // (C, 2) A: Σg, Σg(x-μ)
  const T* g = static_cast<const T*>(grad.data_ptr());     // (N, C, L)
  const T* xp = static_cast<const T*>(x.data_ptr());       // (N, C, L)
  const A* mean = static_cast<const A*>(save_mean.data_ptr());
  const A* invstd = static_cast<const A*>(save_invstd.data_ptr());
  const A* w = ptr_or_null<A>(weight);
  const A* b = ptr_or_null<A>(bias);
  batch_norm_grad_sums_kernel<T><<<static_cast<unsigned>(a.C), kBlock, 0, stream>>>(
      g, xp, mean, invstd, w, b, bounds_of<A>(a), static_cast<A*>(dweight.data_ptr()), static_cast<A*>(dbias.data_ptr()),
      static_cast<A*>(sums.data_ptr()), a.C, a.L, M);
  EMBER_CUDA_CHECK_LAUNCH("batch_norm_grad_sums_kernel");
  if (total == 0) return;
  batch_norm_backward_input_kernel<T><<<elementwise_grid(total), 256, 0, stream>>>(
      g, xp, mean, invstd, w, b, bounds_of<A>(a), static_cast<const A*>(sums.data_ptr()),
      static_cast<T*>(dx.data_ptr()), total, a.C, a.L, M, a.training);
  EMBER_CUDA_CHECK_LAUNCH("batch_norm_backward_input_kernel");
}

}  // namespace

void batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                        const Tensor& running_var, const Tensor& out, const Tensor& save_mean,
                        const Tensor& save_invstd, const BatchNormArgs& args) {
  dispatch_all_float(x.dtype(), "batch_norm", [&](auto tag) {
    forward_impl<decltype(tag)>(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd, args);
  });
}

void batch_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, const BatchNormArgs& args) {
  dispatch_all_float(x.dtype(), "batch_norm_backward", [&](auto tag) {
    backward_impl<decltype(tag)>(grad, x, weight, bias, save_mean, save_invstd, dx, dweight, dbias, args);
  });
}

}  // namespace ember::cuda
