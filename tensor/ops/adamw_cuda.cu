// AdamW on CUDA (math: tensor/ops/adamw.h): a per-tensor kernel and a multi-tensor kernel that
// updates every parameter in one launch. Both apply adamw_element, so their results are equal.
// T is the parameter's type (f32, f64, bf16, f16), S the state's and the arithmetic's (f32 for
// f32 and 16-bit parameters, f64 for f64).
#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/convert.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/runtime.h"
#include "tensor/cuda/multi_tensor.cuh"
#include "tensor/ops/adamw_kernels.h"

namespace ember::cuda {

namespace {

// The step's scalars in the arithmetic type, so a float update does float arithmetic only.
template <class S>
struct AdamWScalars {
  S one_minus_beta1, beta2, one_minus_beta2, eps, decay, l2, step_size, bc2_sqrt;
};

template <class S>
__host__ __device__ AdamWScalars<S> scalars_of(const AdamWCoefficients& c) {
  return {S(c.one_minus_beta1), S(c.beta2), S(c.one_minus_beta2), S(c.eps),
          S(c.decay_factor),    S(c.l2),    S(c.step_size),       S(c.bias_correction2_sqrt)};
}

// Element i of one tensor: w, g (T); m, v (S).
template <class T, class S>
__device__ __forceinline__ void adamw_element(T* __restrict__ w, const T* __restrict__ g, S* __restrict__ m,
                                              S* __restrict__ v, int64_t i, const AdamWScalars<S>& s) {
  const S wi = convert<S>(w[i]);
  const S gi = convert<S>(g[i]) + s.l2 * wi;
  const S mi = m[i] + s.one_minus_beta1 * (gi - m[i]);
  const S vi = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  const S denom = sqrt(vi) / s.bc2_sqrt + s.eps;
  w[i] = convert<T>(wi * s.decay - s.step_size * mi / denom);
}

// w, g, m, v: (n) contiguous; one thread an element, grid-stride.
template <class T, class S>
__global__ void adamw_update_kernel(T* __restrict__ w, const T* __restrict__ g, S* __restrict__ m,
                                    S* __restrict__ v, int64_t n, AdamWScalars<S> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    adamw_element(w, g, m, v, i, s);
}

// One tensor of the multi-tensor table.
struct AdamWEntry {
  void* w;
  const void* g;
  void* m;
  void* v;
  int64_t n;
  AdamWCoefficients c;  // doubles; converted to S once per chunk
};

// Blocks take chunks (grid-stride over the chunk list), threads a chunk's elements.
template <class T, class S>
__global__ void adamw_multi_tensor_kernel(const AdamWEntry* __restrict__ entries, const TensorChunk* __restrict__ chunks,
                                          int64_t num_chunks) {
  for (int64_t k = blockIdx.x; k < num_chunks; k += gridDim.x) {
    const TensorChunk ch = chunks[k];
    const AdamWEntry& e = entries[ch.entry];
    const AdamWScalars<S> s = scalars_of<S>(e.c);
    const int64_t end = ch.begin + kMultiTensorChunk < e.n ? ch.begin + kMultiTensorChunk : e.n;
    for (int64_t i = ch.begin + threadIdx.x; i < end; i += blockDim.x)
      adamw_element(static_cast<T*>(e.w), static_cast<const T*>(e.g), static_cast<S*>(e.m), static_cast<S*>(e.v), i, s);
  }
}

template <class T, class S>
void launch_adamw(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWCoefficients& c) {
  const int64_t n = param.numel();
  adamw_update_kernel<T, S><<<grid_for(n, 256), 256, 0, stream_of(current_stream())>>>(
      static_cast<T*>(param.data_ptr()), static_cast<const T*>(grad.data_ptr()), static_cast<S*>(exp_avg.data_ptr()),
      static_cast<S*>(exp_avg_sq.data_ptr()), n, scalars_of<S>(c));
  EMBER_CUDA_CHECK_LAUNCH("adamw_update_kernel");
}

template <class T, class S>
void launch_adamw_multi(const std::vector<Tensor>& p, const std::vector<Tensor>& g, const std::vector<Tensor>& m,
                        const std::vector<Tensor>& v, const std::vector<AdamWCoefficients>& c,
                        const std::vector<size_t>& which) {
  std::vector<AdamWEntry> entries;
  std::vector<int64_t> sizes;
  for (size_t i : which) {
    entries.push_back({p[i].data_ptr(), g[i].data_ptr(), m[i].data_ptr(), v[i].data_ptr(), p[i].numel(), c[i]});
    sizes.push_back(p[i].numel());
  }
  MultiTensorTable table = upload_multi_tensor_table(entries.data(), sizeof(AdamWEntry) * entries.size(), sizes,
                                                     p[which[0]].device());
  adamw_multi_tensor_kernel<T, S><<<multi_tensor_grid(table.num_chunks), kMultiTensorThreads, 0,
                                    stream_of(current_stream())>>>(
      static_cast<const AdamWEntry*>(table.entries()), table.chunks(), table.num_chunks);
  EMBER_CUDA_CHECK_LAUNCH("adamw_multi_tensor_kernel");
}


}  // namespace

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWCoefficients& c) {
  dispatch_param(param.dtype(), "adamw_update",
                 [&]<class T, class S>() { launch_adamw<T, S>(param, grad, exp_avg, exp_avg_sq, c); });
}

void adamw_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                        const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                        const std::vector<AdamWCoefficients>& c) {
  for (const std::vector<size_t>& which : indices_by_dtype(params))  // one launch per parameter dtype
    dispatch_param(params[which[0]].dtype(), "adamw_update_multi", [&]<class T, class S>() {
      launch_adamw_multi<T, S>(params, grads, exp_avgs, exp_avg_sqs, c, which);
    });
}

}  // namespace ember::cuda
