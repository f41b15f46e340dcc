// Layer norm on CUDA (math: tensor/ops/layer_norm.h), after llm.c's layernorm kernels.
//   layer_norm_forward_kernel:        a warp per row: mean, then variance from the cached row,
//                                     then y. Two reads of a row that sits in L1/L2.
//   layer_norm_backward_input_kernel: a warp per row: Σh, Σh·x̂, then dx.
//   layer_norm_backward_params_partial_kernel + layer_norm_backward_params_final_kernel:
//                                     dγ, dβ as per-chunk column sums (32 columns × a chunk of
//                                     rows per block), then one thread per column adds the
//                                     chunks in order: deterministic, no atomics.
// Next steps if a profile asks: 128-bit packed loads when D % 4 == 0, fusing the parameter
// sums into the input kernel with a shared-memory scratch per block.
#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/runtime.h"
#include "tensor/ops/copy.h"
#include "tensor/ops/layer_norm_kernels.h"

namespace ember::cuda {

namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;  // warps per block in the per-row kernels
constexpr int kParamRows = 8;     // threadIdx.y extent in the parameter-gradient kernel

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// T: x's type (f32, f64, bf16, f16); A = acc_t<T>: the arithmetic's and the statistics' type
// (f32 for 16-bit T). Values of type T are converted on load and rounded once on store.

// x, out: (R, D) T; weight, bias: (D) A or null; mean, rstd: (R) A.
template <class T>
__global__ void layer_norm_forward_kernel(const T* x, const acc_t<T>* weight, const acc_t<T>* bias, T* out,
                                          acc_t<T>* mean, acc_t<T>* rstd, int64_t rows, int64_t D, double eps) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp;
  if (r >= rows) return;
  const T* xr = x + r * D;
  A s = 0;
  for (int64_t j = lane; j < D; j += kWarp) s += static_cast<A>(xr[j]);
  const A m = warp_sum(s) / static_cast<A>(D);
  A v = 0;
  for (int64_t j = lane; j < D; j += kWarp) {
    A d = static_cast<A>(xr[j]) - m;
    v += d * d;
  }
  const A rs = static_cast<A>(1.0 / sqrt(static_cast<double>(warp_sum(v) / static_cast<A>(D)) + eps));
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
  T* yr = out + r * D;
  for (int64_t j = lane; j < D; j += kWarp) {
    A y = (static_cast<A>(xr[j]) - m) * rs;
    if (weight) y *= weight[j];
    if (bias) y += bias[j];
    yr[j] = convert<T>(y);
  }
}

// grad, x, dx: (R, D) T; weight: (D) A or null; mean, rstd: (R) A.
template <class T>
__global__ void layer_norm_backward_input_kernel(const T* grad, const T* x, const acc_t<T>* weight,
                                                 const acc_t<T>* mean, const acc_t<T>* rstd, T* dx, int64_t rows,
                                                 int64_t D) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  const int64_t r = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp;
  if (r >= rows) return;
  const T* gr = grad + r * D;
  const T* xr = x + r * D;
  const A m = mean[r], rs = rstd[r];
  A sh = 0, shx = 0;
  for (int64_t j = lane; j < D; j += kWarp) {
    const A g = static_cast<A>(gr[j]);
    const A h = weight ? g * weight[j] : g;
    sh += h;
    shx += h * (static_cast<A>(xr[j]) - m) * rs;
  }
  const A mean_h = warp_sum(sh) / static_cast<A>(D);
  const A mean_hx = warp_sum(shx) / static_cast<A>(D);
  T* dr = dx + r * D;
  for (int64_t j = lane; j < D; j += kWarp) {
    const A g = static_cast<A>(gr[j]);
    const A h = weight ? g * weight[j] : g;
    const A xhat = (static_cast<A>(xr[j]) - m) * rs;
    dr[j] = convert<T>(rs * (h - mean_h - xhat * mean_hx));
  }
}

// Block (32, kParamRows): 32 columns × the rows of chunk blockIdx.y.
// part_dw, part_db: (chunks, D) A.
template <class T>
__global__ void layer_norm_backward_params_partial_kernel(const T* grad, const T* x, const acc_t<T>* mean,
                                                          const acc_t<T>* rstd, acc_t<T>* part_dw, acc_t<T>* part_db,
                                                          int64_t rows, int64_t D, int64_t chunks) {
  using A = acc_t<T>;
  __shared__ A sw[kParamRows][kWarp + 1];
  __shared__ A sb[kParamRows][kWarp + 1];
  const int64_t col = blockIdx.x * int64_t(kWarp) + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = rows * chunk / chunks, end = rows * (chunk + 1) / chunks;
  A aw = 0, ab = 0;
  if (col < D) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kParamRows) {
      const A g = static_cast<A>(grad[r * D + col]);
      aw += g * (static_cast<A>(x[r * D + col]) - mean[r]) * rstd[r];
      ab += g;
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && col < D) {
    for (int k = 1; k < kParamRows; ++k) {
      aw += sw[k][threadIdx.x];
      ab += sb[k][threadIdx.x];
    }
    part_dw[chunk * D + col] = aw;
    part_db[chunk * D + col] = ab;
  }
}

// dweight[j] = Σ_chunks part_dw[chunk, j] (in chunk order), likewise dbias. All (·) A.
template <class A>
__global__ void layer_norm_backward_params_final_kernel(const A* part_dw, const A* part_db, A* dweight, A* dbias,
                                                        int64_t D, int64_t chunks) {
  const int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (col >= D) return;
  A aw = 0, ab = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    aw += part_dw[c * D + col];
    ab += part_db[c * D + col];
  }
  dweight[col] = aw;
  dbias[col] = ab;
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

template <class T>
void forward_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out, const Tensor& mean,
                  const Tensor& rstd, int64_t rows, int64_t D, double eps) {
  using A = acc_t<T>;
  if (rows == 0) return;
  layer_norm_forward_kernel<T><<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0,
                                 stream_of(current_stream())>>>(
      static_cast<const T*>(x.data_ptr()), ptr_or_null<A>(weight), ptr_or_null<A>(bias),
      static_cast<T*>(out.data_ptr()), static_cast<A*>(mean.data_ptr()), static_cast<A*>(rstd.data_ptr()), rows, D,
      eps);
  EMBER_CUDA_CHECK_LAUNCH("layer_norm_forward_kernel");
}

template <class T>
void backward_impl(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dx, const Tensor& dweight, const Tensor& dbias, int64_t rows, int64_t D) {
  using A = acc_t<T>;
  cudaStream_t stream = stream_of(current_stream());
  const T* g = static_cast<const T*>(grad.data_ptr());  // (R, D)
  const T* xp = static_cast<const T*>(x.data_ptr());    // (R, D)
  const A* m = static_cast<const A*>(mean.data_ptr());  // (R)
  const A* rs = static_cast<const A*>(rstd.data_ptr()); // (R)
  if (rows == 0) {
    ember::fill(dweight, 0.0);
    ember::fill(dbias, 0.0);
    return;
  }
  layer_norm_backward_input_kernel<T><<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream>>>(
      g, xp, ptr_or_null<A>(weight), m, rs, static_cast<T*>(dx.data_ptr()), rows, D);
  EMBER_CUDA_CHECK_LAUNCH("layer_norm_backward_input_kernel");
  // About 64 rows per chunk, at most 256 chunks (layer_norm_backward_chunks).
  const int64_t chunks = layer_norm_backward_chunks(rows);
  Tensor part_dw = empty({chunks, D}, dweight.dtype(), x.device());  // (chunks, D) A
  Tensor part_db = empty({chunks, D}, dweight.dtype(), x.device());  // (chunks, D) A
  EMBER_CHECK(ceil_div(D, kWarp) > 0, "layer_norm_backward: D = ", D, " exceeds the CUDA grid");
  dim3 grid(static_cast<unsigned>(ceil_div(D, kWarp)), static_cast<unsigned>(chunks));
  layer_norm_backward_params_partial_kernel<T><<<grid, dim3(kWarp, kParamRows), 0, stream>>>(
      g, xp, m, rs, static_cast<A*>(part_dw.data_ptr()), static_cast<A*>(part_db.data_ptr()), rows, D, chunks);
  EMBER_CUDA_CHECK_LAUNCH("layer_norm_backward_params_partial_kernel");
  layer_norm_backward_params_final_kernel<A><<<ceil_div(D, 256), 256, 0, stream>>>(
      static_cast<const A*>(part_dw.data_ptr()), static_cast<const A*>(part_db.data_ptr()),
      static_cast<A*>(dweight.data_ptr()), static_cast<A*>(dbias.data_ptr()), D, chunks);
  EMBER_CUDA_CHECK_LAUNCH("layer_norm_backward_params_final_kernel");
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                        const Tensor& mean, const Tensor& rstd, int64_t rows, int64_t D, double eps) {
  dispatch_all_float(x.dtype(), "layer_norm", [&](auto tag) {
    forward_impl<decltype(tag)>(x, weight, bias, out, mean, rstd, rows, D, eps);
  });
}

void layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         int64_t rows, int64_t D) {
  dispatch_all_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    backward_impl<decltype(tag)>(grad, x, weight, mean, rstd, dx, dweight, dbias, rows, D);
  });
}

}  // namespace ember::cuda
